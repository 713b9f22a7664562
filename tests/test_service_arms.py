"""Named arms over HTTP: `POST /v1/runs` with `[arms.NAME]` tables and `baseline` in `config`,
checked like a compare config file plus the service's rules on every arm, and every arm in the
run's status and report. A real `nasagent serve` on 127.0.0.1, driven with httpx."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.service_load import RUN_CONFIG, SMALL, Server
from nasagent.agent.compare import read_plan
from nasagent.agent.config import load_config

pytestmark = pytest.mark.timeout(300)

ARMS = {
    "reflect": {"llm": "scripted"},
    "noreflect": {"llm": "scripted", "reflection": False},
    "random": {"mutator": "random"},
}
CONFIG = {**RUN_CONFIG, "seed_arch": SMALL, "iterations": 3, "baseline": "random", "arms": ARMS}
"""The compare config file's keys as JSON: shared settings, [arms.NAME] tables, baseline."""
STAND_IN = "scripted stand-in, not a model"


def finished(client: httpx.Client, run_id: str, seconds: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.get(f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text  # the status of a run never fails
        status = response.json()
        if status["state"] not in ("queued", "running"):
            return dict(status)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end within {seconds}s")


def test_named_arms_run_and_every_arm_is_in_the_status_and_the_report(
    client: httpx.Client, server: Server
) -> None:
    created = client.post("/v1/runs", json={"kind": "compare", "config": CONFIG,
                                            "seeds": [0, 1]})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    status = finished(client, run_id)
    assert status["state"] == "finished", status
    arms = {arm["name"]: arm for arm in status["arms"]}
    assert list(arms) == ["reflect", "noreflect", "random"]
    assert [arm["baseline"] for arm in arms.values()] == [False, False, True]
    assert arms["noreflect"]["settings"] == {"llm": "scripted", "reflection": False}
    assert arms["reflect"]["label"] == f"reflect ({STAND_IN})"
    assert arms["random"]["description"] == "Zen-NAS random mutation, no LLM"
    for arm in arms.values():
        assert arm["progress"] == {"iterations": 6, "total": 6, "runs_finished": 2,
                                   "runs_total": 2}
        assert arm["best"]["run"].startswith(arm["name"] + "/seed-")
    assert status["progress"]["runs_finished"] == status["progress"]["runs_total"] == 6
    assert status["best"]["run"] in {arm["best"]["run"] for arm in arms.values()}

    directory = server.runs_dir / run_id
    plan = read_plan(directory / "compare.toml")
    assert plan.arms == ("reflect", "noreflect", "random") and plan.baseline == "random"
    assert load_config(directory / "noreflect" / "seed-1" / "config.toml").reflection is False
    assert load_config(directory / "reflect" / "seed-1" / "config.toml").reflection is True

    summary = client.get(f"/v1/runs/{run_id}/report", params={"format": "json"}).json()
    assert list(summary["arms"]) == ["reflect", "noreflect", "random"]
    assert {(t["arm"], t["baseline"]) for t in summary["comparisons"]} == {
        ("reflect", "random"), ("noreflect", "random")}
    assert all(t["family"] == 2 for t in summary["comparisons"])
    html = client.get(f"/v1/runs/{run_id}/report").text
    for name in arms:
        assert arms[name]["label"] in html


def test_the_request_arms_pick_which_defined_arms_run(client: httpx.Client) -> None:
    body = {"kind": "compare", "config": {**CONFIG, "iterations": 1}, "seeds": [0],
            "arms": ["noreflect", "random"]}
    created = client.post("/v1/runs", json=body)
    assert created.status_code == 201, created.text
    status = finished(client, created.json()["id"])
    assert status["state"] == "finished"
    assert [arm["name"] for arm in status["arms"]] == ["noreflect", "random"]


def with_arm(name: str, settings: Any) -> dict[str, Any]:
    return {"kind": "compare", "seeds": [0], "config": {**CONFIG, "arms": {**ARMS, name: settings}}}


REFUSED = [
    pytest.param(with_arm("unfair", {"proxy": "synflow", "iterations": 9}),
                 "config.arms.unfair.iterations", "which every arm shares", id="shared-setting"),
    pytest.param(with_arm("remote", {"llm": "scripted", "base_url": "http://elsewhere.invalid"}),
                 "config.arms.remote.base_url", "not accepted over HTTP", id="base-url"),
    pytest.param(with_arm("files", {"llm": "replay:/etc/passwd"}),
                 "config.arms.files.llm", "reads files on the server", id="replay"),
    pytest.param(with_arm("queue", {"llm": "manual:/tmp"}),
                 "config.arms.queue.llm", "reads files on the server", id="manual"),
    pytest.param(with_arm("broken", {"reflection": "maybe"}),
                 "config.arms.broken", "reflection", id="bad-value"),
    pytest.param(with_arm("typo", {"llm_modle": "x"}),
                 "config.arms.typo", "llm_modle", id="unknown-key"),
    pytest.param(with_arm("bogus", {"llm": "bogus:model"}),
                 "config.arms.bogus", "unknown LLM backend 'bogus'", id="unknown-backend"),
    pytest.param(with_arm("../escape", {"llm": "scripted"}),
                 "config.arms.../escape", "names a folder", id="path-in-name"),
    pytest.param(with_arm("scalar", 3), "config.arms.scalar", "must be a table", id="not-a-table"),
    pytest.param({"kind": "compare", "config": {**CONFIG, "baseline": "gpt5"}},
                 "config.baseline", "baseline 'gpt5' is not one of the arms", id="baseline"),
    pytest.param({"kind": "compare", "config": CONFIG, "arms": ["gpt5"]},
                 "arms", "valid: llm, noreflect, oracle, random, reflect", id="unknown-arm"),
    pytest.param({"kind": "compare", "config": CONFIG, "arms": ["random", "random"]},
                 "arms", "lists a value twice", id="arm-twice"),
    pytest.param({"kind": "compare", "config": {**CONFIG, "arms": ["reflect"]}},
                 "config.arms", "set of tables", id="arms-list-in-config"),
    pytest.param({"kind": "search", "config": CONFIG},
                 "config.arms", "for kind 'compare' only", id="arms-for-a-search"),
]


@pytest.mark.parametrize("body, field, message", REFUSED)
def test_a_bad_arm_is_a_422_with_the_located_one_line_error_and_nothing_is_written(
    client: httpx.Client, server: Server, body: dict[str, Any], field: str, message: str
) -> None:
    before = sorted(server.runs_dir.iterdir())
    response = client.post("/v1/runs", json=body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert message in answer["error"] and "\n" not in answer["error"]
    assert field in [error["field"] for error in answer["errors"]], answer
    assert sorted(server.runs_dir.iterdir()) == before
    assert not list(server.runs_dir.parent.glob("escape*"))


def test_a_key_in_an_arm_is_refused_and_never_echoed(
    client: httpx.Client, server: Server
) -> None:
    before = sorted(server.runs_dir.iterdir())
    secret = "sk-live0123456789abcdef"
    for settings in ({"llm": "openai:gpt-4o", "openai_api_key": "x"},
                     {"llm": "openai:gpt-4o", "model": secret}):
        response = client.post("/v1/runs", json=with_arm("keyed", settings))
        assert response.status_code == 422 and "environment" in response.text
        assert secret not in response.text
    assert sorted(server.runs_dir.iterdir()) == before


def test_the_readme_compare_request_is_a_valid_plan() -> None:
    from nasagent.agent.service import api

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    request = readme.split("""-d '{"kind": "compare",""", 1)[1].split("'", 1)[0]
    body = json.loads('{"kind": "compare",' + request)
    plan = api.compare_plan(body["config"], body.get("arms"), body["seeds"])  # nothing runs
    assert plan.arms == ("gpt4o", "noreflect", "random") and plan.baseline == "random"
    assert plan.run_config("noreflect", 2).reflection is False and plan.seeds == (0, 1, 2)


def test_compare_toml_is_never_seen_half_written(tmp_path: Path) -> None:
    """GET /v1/runs/{id} reads compare.toml while the comparison rewrites it as it starts."""
    import threading

    from nasagent.agent.compare import make_plan, write_plan
    from nasagent.agent.config import RunConfig

    plan = make_plan(RunConfig(iterations=3), ["llm", "random"], [0, 1])
    path = tmp_path / "compare.toml"
    write_plan(plan, path)
    stop = time.monotonic() + 0.5

    def rewrite() -> None:
        while time.monotonic() < stop:
            write_plan(plan, path)

    writer = threading.Thread(target=rewrite)
    writer.start()
    reads = []
    while time.monotonic() < stop:
        reads.append(read_plan(path) == plan)  # a torn read raises ConfigError
    writer.join()
    assert reads and all(reads)
