"""Commands that do not score start without torch, matplotlib, scipy or the OpenAI SDK.

Timing lives in bench/startup.py; this test checks what is imported, which does not depend on
the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasagent.evaluator import CIFAR_SEED

HEAVY = ("torch", "matplotlib", "scipy", "openai")

PROBE = """
import json, runpy, sys
sys.argv = ["nasagent", *sys.argv[1:]]
try:
    runpy.run_module("nasagent.agent", run_name="__main__")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = sorted(name for name in {heavy!r} if name in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
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
        ["search", "--help"],
    ],
    ids=lambda args: " ".join(args[:2])[:30],
)
def test_commands_that_do_not_score_import_no_heavy_library(
    args: list[str], tmp_path: Path
) -> None:
    reply = tmp_path / "reply.txt"
    reply.write_text(REPLY, encoding="utf-8")
    argv = [str(reply) if arg == "REPLY" else arg for arg in args]
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], capture_output=True,
        text=True, timeout=120, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    result = json.loads(done.stderr.strip().splitlines()[-1])

    assert result["code"] in (0, None), done.stderr
    assert result["heavy"] == [], f"{' '.join(args[:1])} imported {result['heavy']}"


def test_import_nasagent_is_cheap_and_loads_names_on_use() -> None:
    probe = (
        f"import sys, nasagent; before = sorted(m for m in {HEAVY + ('pydantic',)!r} "
        "if m in sys.modules); nasagent.check; nasagent.mutate; nasagent.PROXIES.get('gradnorm'); "
        f"after = sorted(m for m in {HEAVY!r} if m in sys.modules); print(before, after)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[] []"
