"""No request can take the server's memory: a real `nasagent serve` on 127.0.0.1.

Issue 16: `POST /v1/score` of a 2048-channel, 600-sub-layer block ran 80 s, the kernel killed
the server at 24 GB and every later request was refused; `POST /v1/runs` took the same block
as `seed_arch` (201, files left behind) and `"iterations": 1000000000`. Now an input over the
memory cap is a 422 before anything is scored or written, request sizes are bounded, and
scoring runs in a worker process whose resident memory is watched, so that a scoring that
outgrows its estimate kills the worker, never the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.service_load import SMALL, Server, serving
from nasagent.agent.config import load_config
from nasagent.agent.service.limits import MAX_SEEDS, REQUEST_MAXIMA, WORKER_BASE_MB
from nasagent.evaluator import CIFAR_SEED

pytestmark = pytest.mark.timeout(300)

HUGE = "SuperConvK3BNRELU(3,2048,1,600)"
CAP_MB = 8192
NO_BUDGETS = {"search_space": "all", "max_params": None, "max_layers": None}
ZENNET_05M = (  # GradNorm at batch 64 holds about 1 GB more than an idle worker
    "SuperConvK3BNRELU(3,64,1,1)SuperResK1K5K1(64,168,1,16,3)SuperResK1K3K1(168,80,2,32,4)"
    "SuperResK1K5K1(80,112,2,16,3)SuperResK1K5K1(112,144,1,24,3)SuperResK1K3K1(144,32,2,40,1)"
    "SuperConvK1BNRELU(32,512,1,1)"
)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    runs_dir = tmp_path_factory.mktemp("memory") / "runs"
    with serving(runs_dir, args=("--max-memory", str(CAP_MB))) as running:
        yield running


@pytest.fixture()
def client(capped: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=capped.base_url, timeout=120) as http:
        yield http


def run_folders(server: Server) -> set[str]:
    return {path.name for path in server.runs_dir.iterdir() if path.name != "mutate"}


def fields(response: httpx.Response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


def test_the_hostile_score_is_a_422_and_the_server_answers_after(client: httpx.Client) -> None:
    response = client.post("/v1/score", json={"archs": [SMALL, HUGE], "proxy": "gradnorm"})
    assert response.status_code == 422 and fields(response) == ["archs.1"]
    error = response.json()["error"]
    assert error.startswith("archs.1 needs an estimated 1,855.6 GB to score at batch 64")
    assert "over the memory cap of 8.0 GB (8,192 MB)" in error
    assert client.get("/v1/health").json()["status"] == "ok"
    rows = client.post("/v1/score", json={"archs": [SMALL], "proxy": "gradnorm"}).json()
    assert rows["results"][0]["status"] == "ok"  # scored in the worker process


def test_a_huge_seed_is_a_422_and_nothing_is_written(
    client: httpx.Client, capped: Server
) -> None:
    before = run_folders(capped)
    for kind in ("search", "compare"):
        response = client.post("/v1/runs", json={
            "kind": kind, "config": {**NO_BUDGETS, "llm": "scripted", "seed_arch": HUGE}})
        assert response.status_code == 422, response.text
        assert "seed_arch needs an estimated" in response.json()["error"]
    assert run_folders(capped) == before


def test_a_parent_over_the_cap_is_a_422(client: httpx.Client) -> None:
    response = client.post("/v1/mutate", json={"parent": HUGE, "config": NO_BUDGETS})
    assert response.status_code == 422 and fields(response) == ["parent"]
    assert "parent needs an estimated" in response.json()["error"]


@pytest.mark.parametrize("config, field", [
    ({"iterations": 1_000_000_000}, "config.iterations"),
    ({"population": REQUEST_MAXIMA["population"] + 1}, "config.population"),
    ({"concurrency": 64}, "config.concurrency"),
    ({"init_population": 5_000}, "config.init_population"),
    ({"workers": 0}, "config.workers"),
    ({"workers": 64}, "config.workers"),
    ({"max_memory": "none"}, "config.max_memory"),
    ({"max_memory": CAP_MB * 2}, "config.max_memory"),
    ({"score_memory": 10 * CAP_MB}, "config.score_memory"),
])
def test_sizes_and_caps_beyond_the_server_are_422_before_anything_is_written(
    client: httpx.Client, capped: Server, config: dict, field: str
) -> None:
    before = run_folders(capped)
    for kind in ("search", "compare"):
        response = client.post("/v1/runs", json={"kind": kind,
                                                 "config": {"llm": "scripted", **config}})
        assert response.status_code == 422 and field in fields(response), response.text
        assert "this server" in response.json()["error"]
    assert run_folders(capped) == before


def test_compare_counts_and_arms_are_bounded(client: httpx.Client, capped: Server) -> None:
    before = run_folders(capped)
    many_seeds = client.post("/v1/runs", json={"kind": "compare", "config": {"llm": "scripted"},
                                               "seeds": list(range(MAX_SEEDS + 1))})
    assert many_seeds.status_code == 422 and fields(many_seeds) == ["seeds"]
    arm = client.post("/v1/runs", json={"kind": "compare", "config": {
        "llm": "scripted", "arms": {"wide": {"mutator": "random", "concurrency": 99}}}})
    assert arm.status_code == 422 and fields(arm) == ["config.arms.wide.concurrency"]
    mutate = client.post("/v1/mutate", json={"parent": SMALL, "config": {"max_tokens": 10**6}})
    assert mutate.status_code == 422 and fields(mutate) == ["config.max_tokens"]
    scoring = client.post("/v1/score", json={"archs": [SMALL], "repeats": 1000})
    assert scoring.status_code == 422
    assert run_folders(capped) == before


def test_a_run_scores_in_a_capped_worker(client: httpx.Client, capped: Server) -> None:
    created = client.post("/v1/runs", json={"kind": "search", "config": {
        "llm": "scripted", "iterations": 2, "batch_size": 8, "seed_arch": CIFAR_SEED}})
    assert created.status_code == 201
    config = load_config(capped.runs_dir / created.json()["id"] / "config.toml")
    assert config.workers == 1 and config.max_memory == CAP_MB
    assert config.score_memory == CAP_MB + WORKER_BASE_MB


def test_a_scoring_that_outgrows_its_estimate_kills_the_worker_not_the_server(
    tmp_path: Path,
) -> None:
    """A generous estimate cap and a small resident cap: the scoring passes the estimate,
    grows past 700 MB in its worker, and only the worker dies."""
    args = ("--max-memory", "100000", "--score-memory", "700")
    with serving(tmp_path / "runs", args=args) as server, httpx.Client(
        base_url=server.base_url, timeout=120
    ) as http:
        rows = http.post("/v1/score", json={"archs": [ZENNET_05M], "proxy": "gradnorm"})
        assert rows.status_code == 200
        (row,) = rows.json()["results"]
        assert row["status"] == "memory" and "score_memory=700 MB" in row["message"]
        assert http.get("/v1/health").json()["status"] == "ok"
        again = http.post("/v1/score", json={"archs": [SMALL], "proxy": "gradnorm"}).json()
        assert again["results"][0]["status"] == "ok"  # a fresh worker took its place
        assert server.process.poll() is None
