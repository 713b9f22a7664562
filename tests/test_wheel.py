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
PACKAGES = {"__init__.py", "py.typed", "agent", "evaluator", "prompts", "fixtures"}
"""What the wheel installs under nasagent/: the front door and the four mapped folders."""
CODE_ROOTS = ("nasagent", "agent", "evaluator", "prompts", "fixtures")
SHIPPED_DATA = ("nasagent/py.typed", "prompts/**/*.j2", "fixtures/transcripts/**/*.jsonl",
                "fixtures/transcripts/**/*.json", "fixtures/transcripts/**/*.toml",
                "fixtures/architectures/*.txt", "evaluator/spaces/nb201/data/*.csv.gz",
                "evaluator/spaces/nb201/data/*.md")
"""The data the demo, `replay`, the prompts and the NB201 spaces (their accuracy table and its
source) read; nothing else that is not code ships."""
TEST_ONLY = ("fixtures/responses/",)
"""Test inputs: in the repository and the sdist, never in the wheel."""


def installed_name(path: Path) -> str:
    """Where a repository file lands in the wheel: agent/x.py -> nasagent/agent/x.py."""
    relative = path.relative_to(ROOT).as_posix()
    return relative if relative.startswith("nasagent/") else f"nasagent/{relative}"


def expected_wheel_files() -> set[str]:
    """Every module of the mapped folders and the shipped data, as the wheel names them."""
    code = [path for root in CODE_ROOTS for path in (ROOT / root).rglob("*.py")
            if "__pycache__" not in path.parts]
    data = [path for pattern in SHIPPED_DATA for path in ROOT.glob(pattern)]
    names = {installed_name(path) for path in [*code, *data]}
    return {name for name in names if not name.removeprefix("nasagent/").startswith(TEST_ONLY)}


def file_list_problems(names: list[str], dist_info: str) -> list[str]:
    """What is wrong with a wheel's file list: other top-level entries, test files, compiled
    files, test fixtures, and any file more or less than `expected_wheel_files`."""
    top = {name.split("/")[0] for name in names}
    shipped = {name for name in names if name.startswith("nasagent/")}
    problems = [f"top level holds {sorted(top - {'nasagent', dist_info})}"] if top != {
        "nasagent", dist_info} else []
    packages = {name.split("/")[1] for name in shipped}
    if packages != PACKAGES:
        problems.append(f"nasagent/ holds {sorted(packages ^ PACKAGES)} beyond or short of "
                        f"{sorted(PACKAGES)}")
    forbidden = [name for name in shipped if name.endswith((".pyc", ".pyo"))
                 or "__pycache__" in name or "/tests/" in name or name.startswith(
                     ("nasagent/tests", "nasagent/bench")) or "fixtures/responses" in name]
    problems += [f"ships {name}" for name in sorted(forbidden)]
    expected = expected_wheel_files()
    problems += [f"unexpected {name}" for name in sorted(shipped - expected - set(forbidden))]
    problems += [f"missing {name}" for name in sorted(expected - shipped)]
    return problems


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
    """The sdist of the checkout and the wheel built from that sdist, as `python -m build`
    builds a release (a wheel built in the checkout would also take whatever a stale
    build/lib holds)."""
    builder = Path(sys.executable)
    if importlib.util.find_spec("build") is None:  # a dev venv made before `build` was a dev dep
        run(sys.executable, "-m", "venv", work / "builder", cwd=work)
        builder = work / "builder" / "bin" / "python"
        run(builder, "-m", "pip", "install", "-q", "build", cwd=work)
    run(builder, "-m", "build", "--outdir", out, ROOT, cwd=work)
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


def test_the_wheel_holds_exactly_the_package_templates_and_transcripts(
    installed: Installed,
) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    dist_info = f"{installed.wheel.name.split('-py3')[0]}.dist-info"

    assert file_list_problems(names, dist_info) == []
    for needed in ("nasagent/__init__.py", "nasagent/py.typed", "nasagent/agent/llm/factory.py",
                   "nasagent/agent/cli/app.py", "nasagent/evaluator/torch_proxies.py",
                   *(f"nasagent/{path}" for path in TEMPLATES),
                   f"{TRANSCRIPT}/llm_calls.jsonl", f"{TRANSCRIPT}/config.toml",
                   "nasagent/fixtures/architectures/zennas-reference.txt",
                   "nasagent/evaluator/spaces/nb201/data/nats_tss_accuracy.csv.gz"):
        assert needed in names, needed
    assert not any("responses" in name for name in names)


def test_the_file_list_check_catches_a_fixture_that_sneaks_in(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    dist_info = f"{installed.wheel.name.split('-py3')[0]}.dist-info"
    for intruder in ("nasagent/fixtures/responses/over_cap.txt",
                     "nasagent/fixtures/responses/make_big.py",
                     "nasagent/agent/__pycache__/cli.cpython-311.pyc",
                     "nasagent/tests/test_stats.py", "tests/conftest.py"):
        assert file_list_problems([*names, intruder], dist_info), intruder
    dropped = [name for name in names if not name.endswith("mutation_system.j2")]
    assert any(p.startswith("missing") for p in file_list_problems(dropped, dist_info))


def test_the_sdist_holds_the_repository_layout(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("setup.py", "pyproject.toml", "README.md", "agent/cli/app.py",
                   "evaluator/spaces/zennas/codec.py", *TEMPLATES, "nasagent/__init__.py",
                   "fixtures/transcripts/claude-manual-cifar/seed-0/llm_calls.jsonl",
                   "fixtures/responses/corpus.jsonl", "fixtures/responses/over_cap.txt"):
        assert needed in names, needed  # the sdist keeps the tests' inputs


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


def test_an_nb201_search_reads_the_shipped_table(installed: Installed, cwd: Path) -> None:
    done = run(installed.nasagent, "search", "--search-space", "nb201-cifar10", "--llm",
               "scripted", "--proxy", "params", "--iterations", "2", "--out", "nb201",
               "--no-progress", cwd=cwd)
    assert json.loads(done.stdout.strip().splitlines()[-1])["finished"]
    events = [json.loads(line) for line in (cwd / "nb201" / "events.jsonl").open()]
    seed = events[0]
    assert seed["truth"]["index"] == 0 and seed["truth"]["test_accuracy"] == 85.863333


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
