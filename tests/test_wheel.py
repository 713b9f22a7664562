"""The distribution as a user gets it: build the wheel and the sdist, install the wheel into a
fresh virtualenv outside the checkout, and run the commands from a temporary directory.

Marked `wheel` (`pytest -m wheel` runs only these; `-m "not wheel"` skips them). It needs the
package index that pip is configured with (setuptools for the build, the dependencies for
the install); one virtualenv is built per test session and shared by the tests below.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from nasagent.evaluator import CIFAR_SEED

pytestmark = [pytest.mark.wheel, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[1]
TORCH_SPEC = os.environ.get("TORCH_SPEC", "torch==2.13.0")  # the Makefile's CPU build
TRANSCRIPT = "nasagent/fixtures/transcripts/claude-manual-cifar/seed-0"
TEMPLATES = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "prompts").rglob("*.j2"))


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    python: Path
    nasagent: Path
    site: Path


def run(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1")
    done = subprocess.run([str(arg) for arg in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def build(out: Path, work: Path) -> tuple[Path, Path]:
    """The wheel and the sdist of the checkout, built like `python -m build` builds them."""
    builder = Path(sys.executable)
    if importlib.util.find_spec("build") is None:  # a dev venv made before `build` was a dev dep
        run(sys.executable, "-m", "venv", work / "builder", cwd=work)
        builder = work / "builder" / "bin" / "python"
        run(builder, "-m", "pip", "install", "-q", "build", cwd=work)
    run(builder, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT, cwd=work)
    (wheel,) = out.glob("nasagent-*.whl")
    (sdist,) = out.glob("nasagent-*.tar.gz")
    return wheel, sdist


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    assert not work.resolve().is_relative_to(ROOT)
    wheel, sdist = build(work / "dist", work)
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=work)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", TORCH_SPEC, cwd=work)
    run(python, "-m", "pip", "install", "-q", wheel, cwd=work)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=work).stdout.strip())
    return Installed(wheel, sdist, python, venv / "bin" / "nasagent", site)


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    return tmp_path


def test_the_wheel_holds_one_namespace_with_templates_and_fixtures(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    top = {name.split("/")[0] for name in names}

    assert top == {"nasagent", f"{installed.wheel.name.split('-py3')[0]}.dist-info"}
    for needed in ("nasagent/__init__.py", "nasagent/py.typed", "nasagent/agent/llm/factory.py",
                   "nasagent/agent/cli/app.py", "nasagent/evaluator/torch_proxies.py",
                   *(f"nasagent/{path}" for path in TEMPLATES),
                   f"{TRANSCRIPT}/llm_calls.jsonl", f"{TRANSCRIPT}/config.toml",
                   "nasagent/fixtures/architectures/zennas-reference.txt"):
        assert needed in names, needed
    assert not any(name.startswith(("nasagent/tests", "tests/", "bench/")) for name in names)


def test_the_sdist_holds_the_repository_layout(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("setup.py", "pyproject.toml", "README.md", "agent/cli/app.py",
                   "evaluator/spaces/zennas/codec.py", *TEMPLATES, "nasagent/__init__.py",
                   "fixtures/transcripts/claude-manual-cifar/seed-0/llm_calls.jsonl"):
        assert needed in names, needed


def test_help_inspect_and_prompt_run_from_any_directory(installed: Installed, cwd: Path) -> None:
    assert "search" in run(installed.nasagent, "--help", cwd=cwd).stdout
    inspected = run(installed.nasagent, "inspect", CIFAR_SEED, "--json", cwd=cwd).stdout
    (report,) = [json.loads(line) for line in inspected.splitlines() if line.strip()]
    assert report["valid"] and report["canonical"] == CIFAR_SEED
    prompt = run(installed.nasagent, "prompt", CIFAR_SEED, cwd=cwd).stdout
    assert "SuperResK3K3" in prompt and "GradNorm" in prompt


def test_a_scripted_search_runs_three_iterations(installed: Installed, cwd: Path) -> None:
    done = run(installed.nasagent, "search", "--llm", "scripted", "--iterations", "3",
               "--batch-size", "8", "--out", "run", "--no-progress", cwd=cwd)
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["finished"] and result["best_arch"]
    events = (cwd / "run" / "events.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["phase"] == "search" for line in events) == 3


def test_the_shipped_transcript_replays(installed: Installed, cwd: Path) -> None:
    transcript = installed.site / TRANSCRIPT
    done = run(installed.nasagent, "replay", transcript, "--out", cwd / "replayed",
               "--no-rescore", "--no-progress", cwd=cwd)

    assert "replayed" in done.stdout and (cwd / "replayed" / "events.jsonl").exists()


def test_import_nasagent_uses_the_installed_copy(installed: Installed, cwd: Path) -> None:
    code = ("import nasagent; print(nasagent.__version__); print(nasagent.__file__); "
            f"print(nasagent.check_string({CIFAR_SEED!r}, nasagent.Constraints()).valid)")
    version, path, valid = run(installed.python, "-c", code, cwd=cwd).stdout.split()

    assert version == "0.1.0" and valid == "True"
    assert Path(path).is_relative_to(installed.site)
