"""Fixtures of the service tests: a real `nasagent serve` on 127.0.0.1, one per test module,
and an httpx client of it per test (a module that needs another server defines its own)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bench.service_load import Server, serving


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    runs_dir = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]) / "runs"
    with serving(runs_dir) as running:
        yield running


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        yield http
