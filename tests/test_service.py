"""The mutation service over real HTTP: a `nasagent serve` process on 127.0.0.1, httpx."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import nasagent
from bench.service_load import SMALL, Server, serving
from nasagent.agent.cli import serve_command
from nasagent.agent.cli.app import app
from nasagent.agent.llm.recording import load_calls
from nasagent.agent.service.app import INLINE_CHECK_ARCHS
from nasagent.evaluator import CIFAR_SEED

pytestmark = pytest.mark.timeout(240)

BROKEN = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(16,32,2,8,1)"  # 8 channels in, 16 declared
TOKEN = "test-token-not-a-secret"


def inspect_json(*archs: str, flags: tuple[str, ...] = ()) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["inspect", "--json", *flags, *archs])
    return [json.loads(line) for line in result.stdout.splitlines()]


# ---- check, score, mutate -------------------------------------------------------------------


def test_check_answers_what_inspect_json_prints(client: httpx.Client) -> None:
    archs = [CIFAR_SEED, BROKEN, "SuperConvK3BNRELU(3,8,1"]
    response = client.post("/v1/check", json={"archs": archs, "max_params": 1e5})
    assert response.status_code == 200
    assert response.json()["results"] == inspect_json(*archs, flags=("--max-params", "1e5"))
    # counts are integers, as inspect --json prints them (3884, never 3884.0)
    seed = response.json()["results"][0]
    assert all(type(seed[key]) is int for key in ("params", "flops", "layers")), seed
    errors = response.json()["results"][1]["errors"]
    assert {"block", "field", "message"} <= set(errors[0]) and errors[0]["block"] == 1


def test_a_large_check_answers_the_same_from_a_worker_thread(client: httpx.Client) -> None:
    archs = [CIFAR_SEED, BROKEN] * (INLINE_CHECK_ARCHS // 2 + 1)  # past the inline limit
    response = client.post("/v1/check", json={"archs": archs})
    assert response.status_code == 200
    assert response.json()["results"] == inspect_json(*archs)


def test_check_refuses_bad_options_with_the_field(client: httpx.Client) -> None:
    response = client.post("/v1/check", json={"archs": [SMALL], "search_space": "bogus"})
    assert response.status_code == 422
    body = response.json()
    assert "zennas-cifar" in json.dumps(body) and "search_space" in json.dumps(body)


def test_score_rows_are_the_cli_rows(client: httpx.Client) -> None:
    body = {"archs": [SMALL, "nonsense"], "proxy": "params"}
    rows = client.post("/v1/score", json=body).json()["results"]
    assert [row["status"] for row in rows] == ["ok", "invalid"]
    assert rows[0]["canonical"] == SMALL and rows[0]["score"] > 0
    assert rows[1]["score"] is None and rows[1]["message"]
    assert set(rows[0]) == {"input", "canonical", "proxy", "score", "status", "seconds", "seed",
                            "message", "inputs"}


def test_score_unknown_proxy_is_a_422_listing_the_proxies(client: httpx.Client) -> None:
    response = client.post("/v1/score", json={"archs": [SMALL], "proxy": "bogus"})
    assert response.status_code == 422
    assert "gradnorm" in response.json()["error"]


def test_mutate_random_gives_a_valid_child(client: httpx.Client) -> None:
    body = {"parent": CIFAR_SEED, "mutator": "random", "seed": 3}
    first = client.post("/v1/mutate", json=body).json()
    assert first["outcome"] in ("ok", "over_budget") and first["arch"] != CIFAR_SEED
    assert first["tokens"] == 0 and first == client.post("/v1/mutate", json=body).json()
    assert first["params"] > 0 and first["flops"] > 0 and first["layers"] >= 1
    assert all(type(first[key]) is int for key in ("params", "flops", "layers")), first


def test_mutate_random_gives_the_child_of_the_cli_and_the_python_api(
    client: httpx.Client
) -> None:
    """One seed, one child: `nasagent mutate --seed s`, `nasagent.mutate(seed=s)`, the API."""
    served = [client.post("/v1/mutate", json={"parent": CIFAR_SEED, "seed": seed}).json()["arch"]
              for seed in range(5, 9)]
    cli = CliRunner().invoke(app, ["mutate", CIFAR_SEED, "--seed", "5", "--n", "4"])
    assert served == cli.stdout.splitlines()
    assert served == [nasagent.mutate(CIFAR_SEED, seed=seed).arch for seed in range(5, 9)]


def test_mutate_with_the_scripted_llm_records_the_call(
    client: httpx.Client, server: Server
) -> None:
    body = {"parent": CIFAR_SEED, "score": 12.5, "mutator": "llm", "llm": "scripted", "seed": 0,
            "lessons": ["wider late stages helped"],
            "history": [{"iteration": 1, "parent": CIFAR_SEED, "parent_score": 12.5,
                         "arch": None, "outcome": "invalid", "score": None,
                         "errors": ["block 1, field out: too wide"]}]}
    answer = client.post("/v1/mutate", json=body).json()
    assert answer["outcome"] == "ok" and answer["arch"] and answer["tokens"] > 0
    calls = load_calls(server.runs_dir / "mutate" / "llm_calls.jsonl")
    prompt = "\n".join(message.content for message in calls[-1].messages)
    assert "wider late stages helped" in prompt and "too wide" in prompt


def test_mutate_an_invalid_parent_is_a_422_with_located_errors(client: httpx.Client) -> None:
    response = client.post("/v1/mutate", json={"parent": BROKEN})
    assert response.status_code == 422
    assert response.json()["errors"][0]["block"] == 1


# ---- bad input, credentials, limits ---------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"parent": SMALL, "mutator": "llm", "llm": "openai:gpt-4o", "api_key": "x"},
    {"parent": SMALL, "config": {"openai_api_key": "x"}},
    {"parent": SMALL, "lessons": ["sk-live0123456789abcdef"]},
])
def test_credentials_are_refused_and_never_echoed(client: httpx.Client, body: dict) -> None:
    response = client.post("/v1/mutate", json=body)
    assert response.status_code == 422
    assert "environment" in response.json()["errors"][0]["message"]
    assert "sk-live0123456789abcdef" not in response.text


@pytest.mark.parametrize("config", [
    {"base_url": "http://elsewhere.invalid/v1"},
    {"executor": "ray", "ray_address": "10.0.0.1:6379"},
    {"llm": "replay:/etc/passwd"},
    {"llm": "manual:/tmp"},
])
def test_settings_that_reach_server_secrets_or_files_are_refused(
    client: httpx.Client, config: dict
) -> None:
    response = client.post("/v1/runs", json={"kind": "search", "config": config})
    assert response.status_code == 422 and "HTTP" in response.json()["error"]


def test_bad_requests_are_4xx_never_500(client: httpx.Client) -> None:
    not_json = client.post("/v1/check", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert not_json.status_code == 422
    unknown_key = client.post("/v1/check", json={"archs": [SMALL], "colour": "red"})
    assert unknown_key.status_code == 422 and "colour" in unknown_key.text
    bad_config = client.post("/v1/runs", json={"kind": "search", "config": {"iterations": 0}})
    assert bad_config.status_code == 422 and "iterations" in bad_config.json()["error"]
    assert client.get("/v1/runs/no-such-run").status_code == 404
    assert client.get("/v1/runs/..%2F..%2Fetc").status_code == 404
    assert client.post("/v1/runs", json={"kind": "tune"}).status_code == 422


def test_an_oversized_body_is_a_413(client: httpx.Client) -> None:
    response = client.post("/v1/check", json={"archs": ["x" * (2 << 20)]})
    assert response.status_code == 413


def test_health_and_openapi(client: httpx.Client) -> None:
    assert client.get("/v1/health").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/check", "/v1/score", "/v1/mutate", "/v1/runs", "/v1/runs/{run_id}/events"} <= set(
        paths
    )


# ---- the token ------------------------------------------------------------------------------


def test_with_a_token_every_request_but_health_must_carry_it(tmp_path: Path) -> None:
    with serving(tmp_path / "runs", env={"NASAGENT_TOKEN": TOKEN}) as server:
        base = server.base_url
        assert httpx.get(f"{base}/v1/health").status_code == 200
        body = {"archs": [SMALL]}
        assert httpx.post(f"{base}/v1/check", json=body).status_code == 401
        wrong = httpx.post(f"{base}/v1/check", json=body, headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{base}/openapi.json").status_code == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(f"{base}/v1/check", json=body, headers=right).status_code == 200
    assert TOKEN not in server.log.read_text()


def test_binding_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NASAGENT_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2 and "NASAGENT_TOKEN" in result.output


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve_command.importlib.util, "find_spec",
                        lambda name: None if name == "uvicorn" else object())
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2 and "nasagent[serve]" in result.output
