"""Benchmark: the mutation service under load, on loopback only, bounded in count and time.

Starts `nasagent serve` on a free 127.0.0.1 port (its own process, a temporary --runs-dir),
then sends everything at once: CHECKS concurrent `POST /v1/check`, SCORES `POST /v1/score`
and RUNS searches (scripted stand-in LLM, ITERATIONS each), each run's server-sent events
read from offset 0 until its `end`. Prints p50/p95 latency per endpoint, the error count and
whether any event was lost (an id missing, or fewer events than the run's log holds).

    python -m bench.service_load                      # 200 checks, 20 scores, 4 runs
    python -m bench.service_load --checks 20 --scores 2 --runs 1 --iterations 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from nasagent.agent.runlog import EVENTS_FILE
from nasagent.evaluator import CIFAR_SEED

HOST = "127.0.0.1"
SMALL = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"
CHECK_ARCHS = [CIFAR_SEED, SMALL, "SuperResK3K3(8,16,2,8,1)", "SuperConvK3BNRELU(3,8,1"]
RUN_CONFIG = {"llm": "scripted", "batch_size": 8, "population": 16, "concurrency": 2,
              "reflect_every": 5}


# ---- a server in its own process -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A `nasagent serve` process on loopback."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    runs_dir: Path

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to clean up."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def start_server(
    runs_dir: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
    timeout_s: float = 120.0,
) -> Server:
    """Start `nasagent serve` and wait until GET /v1/health answers.

    Raises:
        RuntimeError: the server exited or did not answer within `timeout_s` (log attached).
    """
    port = free_port()
    runs_dir.mkdir(parents=True, exist_ok=True)
    log = runs_dir.parent / f"server-{port}.log"
    command = [sys.executable, "-m", "nasagent.agent", "serve", "--host", HOST,
               "--port", str(port), "--runs-dir", str(runs_dir), *args]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                   env=environment)
    server = Server(process, f"http://{HOST}:{port}", log, runs_dir)
    _wait_healthy(server, timeout_s)
    return server


def _wait_healthy(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited ({server.process.returncode}):\n"
                               f"{server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.base_url}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"server did not answer in {timeout_s}s:\n{server.log.read_text()[-3000:]}")


@contextmanager
def serving(runs_dir: Path, **options: Any) -> Iterator[Server]:
    """A running server for the duration of the block; stopped (or killed) after it."""
    server = start_server(runs_dir, **options)
    try:
        yield server
    finally:
        server.stop()


# ---- server-sent events --------------------------------------------------------------------


@dataclass
class SSEMessage:
    id: str | None
    event: str
    data: str


async def read_events(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> list[SSEMessage]:
    """Every message of an event stream until the server closes it (after `end`)."""
    messages: list[SSEMessage] = []
    fields: dict[str, str] = {}
    async with client.stream("GET", url, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line:
                if "data" in fields:
                    messages.append(SSEMessage(fields.get("id"), fields.get("event", "message"),
                                               fields["data"]))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return messages


# ---- the load ------------------------------------------------------------------------------


@dataclass
class LoadReport:
    """Latencies per endpoint, errors, and what the event streams delivered."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lost_events: list[str] = field(default_factory=list)
    runs: dict[str, list[SSEMessage]] = field(default_factory=dict)
    wall_s: float = 0.0

    def add(self, endpoint: str, seconds: float) -> None:
        self.latencies.setdefault(endpoint, []).append(seconds)

    def lines(self) -> list[str]:
        rows = [f"{'endpoint':<24}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}"]
        for endpoint, values in sorted(self.latencies.items()):
            rows.append(f"{endpoint:<24}{len(values):>5}{_quantile(values, 50):>10.1f}"
                        f"{_quantile(values, 95):>10.1f}")
        rows.append(f"errors: {len(self.errors)}  lost events: {len(self.lost_events)}  "
                    f"wall: {self.wall_s:.1f} s")
        return rows + [f"  {problem}" for problem in [*self.errors, *self.lost_events][:20]]


def _quantile(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered)) - 1))
    return 1000 * ordered[index]


async def _timed(
    report: LoadReport, endpoint: str, client: httpx.AsyncClient, method: str, url: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, json=body)
    except httpx.HTTPError as error:
        report.errors.append(f"{endpoint}: {type(error).__name__}: {error}")
        return None
    report.add(endpoint, time.perf_counter() - started)
    if response.status_code >= 400:
        report.errors.append(f"{endpoint}: HTTP {response.status_code}: {response.text[:200]}")
        return None
    return dict(response.json())


async def _one_run(
    report: LoadReport, client: httpx.AsyncClient, iterations: int, seed: int,
    seed_arch: str | None,
) -> None:
    config = {**RUN_CONFIG, "iterations": iterations, "seed": seed}
    if seed_arch is not None:
        config["seed_arch"] = seed_arch
    created = await _timed(report, "POST /v1/runs", client, "POST", "/v1/runs",
                           {"kind": "search", "config": config})
    if created is None:
        return
    run_id = created["id"]
    started = time.perf_counter()
    messages = await read_events(client, f"/v1/runs/{run_id}/events")
    report.add("GET /v1/runs/{id}/events", time.perf_counter() - started)
    report.runs[run_id] = messages
    status = await _timed(report, "GET /v1/runs/{id}", client, "GET", f"/v1/runs/{run_id}")
    _check_stream(report, run_id, messages, status, iterations)


def _check_stream(
    report: LoadReport, run_id: str, messages: list[SSEMessage], status: dict[str, Any] | None,
    iterations: int,
) -> None:
    events = [m for m in messages if m.event == "event"]
    ids = [int(m.id or -1) for m in events]
    if ids != list(range(len(events))):
        report.lost_events.append(f"{run_id}: event ids {ids} are not 0..{len(events) - 1}")
    searched = [json.loads(m.data) for m in events if json.loads(m.data)["phase"] == "search"]
    if [e["iteration"] for e in searched] != list(range(1, iterations + 1)):
        report.lost_events.append(f"{run_id}: {len(searched)} of {iterations} iterations seen")
    if not messages or messages[-1].event != "end":
        report.lost_events.append(f"{run_id}: the stream did not close with `end`")
    if status is not None and status["state"] != "finished":
        report.errors.append(f"{run_id}: ended {status['state']}: {status.get('error')}")


async def run_load(
    base_url: str, *, checks: int, scores: int, runs: int, iterations: int,
    batch_size: int = 16, seed_arch: str | None = None, token: str | None = None,
    timeout_s: float = 600.0,
) -> LoadReport:
    """Send every request at once and wait for all of them (bounded by `timeout_s`).

    Runs start from `seed_arch` (None: the configuration's default, the Zen-NAS CIFAR seed).
    """
    report = LoadReport()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=checks + scores + 2 * runs + 8)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits,
                                 timeout=timeout_s) as client:
        work = [
            *(_timed(report, "POST /v1/check", client, "POST", "/v1/check",
                     {"archs": CHECK_ARCHS, "max_params": 1e6}) for _ in range(checks)),
            *(_timed(report, "POST /v1/score", client, "POST", "/v1/score",
                     {"archs": [SMALL], "batch_size": batch_size, "seed": k})
              for k in range(scores)),
            *(_one_run(report, client, iterations, seed, seed_arch) for seed in range(runs)),
        ]
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*work), timeout_s)
        report.wall_s = time.perf_counter() - started
    return report


def lost_against_logs(report: LoadReport, runs_dir: Path) -> list[str]:
    """Runs whose stream does not hold exactly the lines of their events.jsonl."""
    lost = []
    for run_id, messages in report.runs.items():
        logged = (runs_dir / run_id / EVENTS_FILE).read_text(encoding="utf-8").splitlines()
        streamed = [m.data for m in messages if m.event == "event"]
        if [json.loads(line) for line in logged] != [json.loads(data) for data in streamed]:
            lost.append(f"{run_id}: streamed {len(streamed)} events, logged {len(logged)}")
    return lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--scores", type=int, default=20)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nasagent-service-load-") as scratch:
        runs_dir = Path(scratch) / "runs"
        with serving(runs_dir, args=("--max-pending-scores", str(max(32, options.scores)))) as s:
            report = asyncio.run(run_load(
                s.base_url, checks=options.checks, scores=options.scores, runs=options.runs,
                iterations=options.iterations, batch_size=options.batch_size,
            ))
        report.lost_events += lost_against_logs(report, runs_dir)
    print(f"service load: {options.checks} checks, {options.scores} scores, {options.runs} runs "
          f"x {options.iterations} iterations, all at once")
    print("\n".join(report.lines()))
    sys.exit(1 if report.errors or report.lost_events else 0)


if __name__ == "__main__":
    main()
