"""The one Registry type, plugins through entry points (used from the CLI), and configurations
validated against the registries before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from nasagent.agent.config import ConfigError, config_from_dict
from nasagent.agent.llm.factory import BACKENDS
from nasagent.agent.mutators import MUTATORS
from nasagent.evaluator.errors import UnknownNameError
from nasagent.evaluator.proxies import PROXIES
from nasagent.evaluator.registry import DuplicateNameError, PluginError, Registry
from nasagent.evaluator.spaces import SEARCH_SPACES

SMALL = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"


@dataclass(frozen=True)
class Thing:
    name: str


def test_register_get_names_and_unknown_names() -> None:
    things: Registry[Thing] = Registry("thing", Thing)
    things.register("b", Thing("b"))
    assert things.register("a")(Thing("a")) == Thing("a")  # the decorator form
    things.unregister("a")

    with pytest.raises(TypeError, match="not a Thing"):
        things.register("c", "not a thing")  # type: ignore[arg-type]
    assert things.names() == ["b"]
    assert things.get("b") == Thing("b") and things["b"] == Thing("b") and "b" in things
    with pytest.raises(UnknownNameError, match=r"unknown thing 'x'; valid: b") as caught:
        things.get("x")
    assert caught.value.valid == ["b"]
    with pytest.raises(DuplicateNameError):
        things.register("b", Thing("b"))
    with pytest.raises(TypeError, match="calls itself 'z'"):
        things.register("y", Thing("z"))


def test_every_user_facing_registry_is_one_type_with_its_plugin_group() -> None:
    groups = {
        "nasagent.proxies": PROXIES, "nasagent.backends": BACKENDS,
        "nasagent.search_spaces": SEARCH_SPACES, "nasagent.mutators": MUTATORS,
    }
    for group, registry in groups.items():
        assert isinstance(registry, Registry) and registry.group == group
    assert {"llm", "random"} <= set(MUTATORS)
    assert MUTATORS.get("llm").needs_llm and MUTATORS.get("llm").reflects
    assert not MUTATORS.get("random").needs_llm and not MUTATORS.get("random").reflects


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("proxy", "bogus", "proxy: unknown proxy 'bogus'; valid: combined, flops, gradnorm"),
        ("search_space", "bogus", "search_space: unknown search space 'bogus'; valid: all"),
        ("llm", "bogus:model", "llm: unknown LLM backend 'bogus'; valid: azure, manual"),
        ("llm", "openai", "llm: LLM backend spec 'openai' needs a model"),
        ("mutator", "bogus", "mutator: unknown mutator 'bogus'; valid: llm, random"),
    ],
)
def test_a_configuration_naming_an_unknown_entry_is_one_clear_error(
    key: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        config_from_dict({key: value})
    assert "\n" not in str(caught.value)


def nasagent_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasagent.agent", *args], cwd=cwd, capture_output=True,
        text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


@pytest.mark.parametrize("flag", [["--proxy", "bogus"], ["--search-space", "bogus"],
                                  ["--llm", "bogus:x"], ["--mutator", "bogus"]])
def test_search_with_an_unknown_name_writes_nothing(tmp_path: Path, flag: list[str]) -> None:
    run_dir = tmp_path / "run"
    done = nasagent_cli("search", *flag, "--out", str(run_dir), "--iterations", "1",
                        cwd=tmp_path)

    assert done.returncode == 2
    assert done.stderr.startswith("error: invalid configuration") and "valid:" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not run_dir.exists()


PLUGIN_MODULE = '''
from nasagent.evaluator.proxies import ProxySpec


def depth(run):
    """The number of sub-layers: a toy proxy that needs no torch."""
    return float(sum(block.sub_layers for block in run.arch.blocks))


MYPROXY = ProxySpec("myproxy", True, "Depth: the number of sub-layers.", depth)
NOT_A_PROXY = 42
'''


def install_plugin(site: Path) -> Path:
    """A tiny distribution, as pip would install it: a module plus its dist-info."""
    (site / "nasagent_myproxy").mkdir(parents=True)
    (site / "nasagent_myproxy" / "__init__.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    info = site / "nasagent_myproxy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nasagent-myproxy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[nasagent.proxies]\nmyproxy = nasagent_myproxy:MYPROXY\n"
        "broken = nasagent_myproxy:NOT_A_PROXY\nmissing = nasagent_myproxy_gone:X\n"
    )
    return site


def test_a_plugin_distribution_adds_a_proxy_used_from_the_cli(tmp_path: Path) -> None:
    site = install_plugin(tmp_path / "site")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    done = nasagent_cli("score", SMALL, "--proxy", "myproxy", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["proxy"] == "myproxy" and row["status"] == "ok" and row["score"] == 3.0

    plugins = nasagent_cli("plugins", "--json", cwd=tmp_path, env=env)
    assert plugins.returncode == 0, plugins.stderr
    proxies = json.loads(plugins.stdout)["proxies"]
    assert proxies["myproxy"] == "plugin nasagent-myproxy 0.1"
    assert proxies["gradnorm"] == "built-in"

    listed = nasagent_cli("score", SMALL, "--proxy", "nope", cwd=tmp_path, env=env)
    assert listed.returncode == 2 and "myproxy" in listed.stderr and "gradnorm" in listed.stderr

    broken = nasagent_cli("score", SMALL, "--proxy", "broken", cwd=tmp_path, env=env)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "'broken'" in broken.stderr and "not a ProxySpec" in broken.stderr

    missing = nasagent_cli("score", SMALL, "--proxy", "missing", cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "failed to load" in missing.stderr


def test_plugins_are_found_lazily_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    PROXIES.reload_plugins()
    try:
        assert "myproxy" in PROXIES.names() and "myproxy" not in PROXIES.builtin_names()
        assert PROXIES.get("myproxy").name == "myproxy"
        assert config_from_dict({"proxy": "myproxy"}).proxy == "myproxy"
        with pytest.raises(PluginError, match="not a ProxySpec"):
            PROXIES.get("broken")
    finally:
        PROXIES.unregister("myproxy")
        PROXIES.reload_plugins()
        monkeypatch.undo()
    PROXIES.reload_plugins()
    assert "myproxy" not in PROXIES.names()
