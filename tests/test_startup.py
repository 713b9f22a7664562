"""Commands that do not score start without torch, matplotlib, scipy or the OpenAI SDK, and
every command imports its own module only (the registry in agent/cli/app.py).

Timing lives in bench/startup.py; this test checks what is imported, which does not depend on
the machine.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command_name
from typer.testing import CliRunner

from nasagent.agent.cli.app import COMMANDS, app
from nasagent.evaluator import CIFAR_SEED

HEAVY = ("torch", "matplotlib", "scipy", "openai")

PROBE = """
import gc, json, runpy, sys
sys.argv = ["nasagent", *sys.argv[1:]]
try:
    runpy.run_module("nasagent.agent", run_name="__main__")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = sorted(name for name in {heavy!r} if name in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy, "modules": sorted(sys.modules),
                  "collector_on": gc.isenabled()}}), file=sys.stderr)
"""

CHILD = CIFAR_SEED.replace("(8,16,1,8,1)", "(8,16,1,8,2)")
REPLY = "```json\n" + json.dumps({"arch": CHILD}) + "\n```\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["inspect", CIFAR_SEED],
        ["inspect", CIFAR_SEED, "--json", "--max-params", "1e6"],
        ["prompt", CIFAR_SEED],
        ["check-response", "REPLY", "--parent", CIFAR_SEED],
        ["mutate", CIFAR_SEED, "--n", "2"],
        ["mutate", CIFAR_SEED, "--mutator", "llm", "--llm", "scripted"],
        ["search", "--help"],
    ],
    ids=lambda args: " ".join(args[:2])[:30],
)
def test_commands_that_do_not_score_import_no_heavy_library(
    args: list[str], tmp_path: Path
) -> None:
    result = run_probe(args, tmp_path)

    assert result["heavy"] == [], f"{' '.join(args[:1])} imported {result['heavy']}"


def run_probe(args: list[str], tmp_path: Path) -> dict[str, Any]:
    """Run `nasagent ARGS` in a fresh interpreter: its exit code, heavy imports and modules."""
    reply = tmp_path / "reply.txt"
    reply.write_text(REPLY, encoding="utf-8")
    argv = [str(reply) if arg == "REPLY" else arg for arg in args]
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], capture_output=True,
        text=True, timeout=120, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    result: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["code"] in (0, None), done.stderr
    assert result["collector_on"], "start-up paused the garbage collector and left it paused"
    return result


CLI = "nasagent.agent.cli"
ALWAYS = {CLI, f"{CLI}.app"}
PINNING = {"nasagent.evaluator", "nasagent.evaluator.cpu_kernels", "nasagent.evaluator.errors"}
"""What every command imports before it runs: the CPU-kernel pin (no pydantic, no torch)."""
CONFIG_AND_LLM = ("nasagent.agent.config", "nasagent.agent.llm", "tomli_w")


@pytest.mark.parametrize(
    ("args", "own", "absent"),
    [
        (["--help"], set(), (*CONFIG_AND_LLM, "pydantic", "jinja2", "nasagent.evaluator")),
        (["inspect", CIFAR_SEED], {"inputs", "inspect_command"}, (*CONFIG_AND_LLM, "jinja2")),
        (["inspect", CIFAR_SEED, "--json"], {"inputs", "inspect_command"},
         (*CONFIG_AND_LLM, "jinja2", "rich")),
        (["prompt", CIFAR_SEED], {"inputs", "prompt_commands"}, CONFIG_AND_LLM),
        (["check-response", "REPLY", "--parent", CIFAR_SEED], {"inputs", "prompt_commands"},
         (*CONFIG_AND_LLM, "jinja2")),
        (["mutate", CIFAR_SEED, "--n", "2"], {"inputs", "mutate_command"},
         (*CONFIG_AND_LLM, "jinja2")),
        (["inspect", "--help"], {"inputs", "inspect_command"}, (*CONFIG_AND_LLM, "jinja2")),
    ],
    ids=lambda value: " ".join(value[:1]) if isinstance(value, list) else None,
)
def test_a_command_imports_its_own_module_only(
    args: list[str], own: set[str], absent: tuple[str, ...], tmp_path: Path
) -> None:
    modules = set(run_probe(args, tmp_path)["modules"])

    commands = {name for name in modules if name.startswith(f"{CLI}.")} | (modules & {CLI})
    assert commands == ALWAYS | {f"{CLI}.{name}" for name in own}
    loaded = sorted(name for name in modules - PINNING for prefix in absent
                    if name == prefix or name.startswith(f"{prefix}."))
    assert loaded == [], f"nasagent {' '.join(args[:1])} imported {loaded}"


def test_the_command_registry_matches_the_commands_and_their_docstrings() -> None:
    """`nasagent --help` shows the registry's summaries: they must be the commands' own."""
    for module in sorted({entry.module for entry in COMMANDS.values()}):
        importlib.import_module(f"{CLI}.{module}")
    registered = {
        info.name or get_command_name(info.callback.__name__): info  # type: ignore[union-attr]
        for info in app.registered_commands
    }

    assert list(registered) and set(registered) == set(COMMANDS)
    for name, info in registered.items():
        doc = inspect.getdoc(info.callback) or ""
        assert COMMANDS[name].summary == doc.split("\n\n")[0].replace("\n", " "), name
        assert info.callback.__module__ == f"{CLI}.{COMMANDS[name].module}", name  # type: ignore[union-attr]


def test_help_lists_every_command_in_registry_order() -> None:
    listing = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})

    assert listing.exit_code == 0
    lines = [line for line in listing.stdout.splitlines() if line.startswith("│ ")]
    shown = [line.split()[1] for line in lines if line.split()[1] in COMMANDS]
    assert shown == list(COMMANDS)


def test_import_nasagent_is_cheap_and_loads_names_on_use() -> None:
    probe = (
        f"import sys, nasagent; before = sorted(m for m in {HEAVY + ('pydantic',)!r} "
        "if m in sys.modules); nasagent.check; nasagent.mutate; nasagent.PROXIES.get('gradnorm'); "
        f"after = sorted(m for m in {HEAVY!r} if m in sys.modules); print(before, after)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[] []"
