"""Checks on a run's inputs that come before anything is written: names, seed, folders.

`search` and `compare` call these before they create a run folder or compare.toml, so a
refused start leaves nothing behind. Names are checked with the registries' own lookups.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from nasagent.agent.config import ConfigError, RunConfig, score_settings_for
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.runlog import (
    BEST_FILE,
    CHECKPOINT_FILE,
    COMPARE_FILE,
    CONFIG_FILE,
    DRIFT_FILE,
    EVENTS_FILE,
    LLM_CALLS_FILE,
    METRICS_FILE,
    POPULATION_FILE,
    STUDY_FILE,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    read_events,
)
from nasagent.evaluator.errors import BlockStringError
from nasagent.evaluator.spaces import SEARCH_SPACES, get_space
from nasagent.evaluator.spaces.base import SearchSpace, spaces_holding
from nasagent.evaluator.validation import Report, ViolationKind


def check_run_inputs(config: RunConfig, *, replaying: bool = False) -> None:
    """Refuse a configuration whose proxy, LLM backend or seed architecture cannot be used.

    Args:
        config: the run's configuration.
        replaying: the run replays a recording (as one whose backend is `replay:` a run
            folder does): a seed over the memory cap is taken from the recording, not refused.

    Raises:
        UnknownNameError: an unregistered proxy or LLM backend prefix.
        LLMConfigError: a malformed LLM backend spec.
        KernelChoiceError: NASAGENT_CPU_KERNELS holds an unknown value.
        ConfigError: a seed architecture that is malformed, from another search space, or
            that breaks a budget in force (the message gives the numbers).
        MemoryCapError: a seed whose memory estimate is over the cap (not when replaying).
    """
    from nasagent.agent.llm.factory import check_backend_spec
    from nasagent.agent.session import llm_spec
    from nasagent.evaluator import cpu_kernels
    from nasagent.evaluator.proxies import get_proxy

    cpu_kernels.requested()  # an unknown NASAGENT_CPU_KERNELS is refused before anything runs
    get_proxy(config.proxy)
    if MUTATORS.get(config.mutator).needs_llm:
        check_backend_spec(llm_spec(config))
    check_seed(config)
    if not (replaying or replays_recording(config)):
        check_seed_memory(config)


def replays_recording(config: RunConfig) -> bool:
    """Whether a run of `config` decides from a recording's scores (agent.reference)."""
    from nasagent.agent.reference import reference_run_dir
    from nasagent.agent.session import llm_spec

    needs_llm = MUTATORS.get(config.mutator).needs_llm
    return needs_llm and reference_run_dir(llm_spec(config)) is not None


def check_seed_memory(config: RunConfig) -> None:
    """Refuse a seed architecture whose memory estimate to score is over the cap.

    Raises:
        MemoryCapError: the one-line sentence (estimate, cap, the flag that raises it).
    """
    seed = get_space(config.search_space).decode(config.seed_arch).architecture
    score_settings_for(config).check_memory(seed, what="seed_arch")


def check_seed(config: RunConfig) -> None:
    """Refuse a seed architecture the run could not start from, saying what to change.

    Raises:
        ConfigError: the seed does not decode, holds elements of another search space, breaks
            a rule, or breaks a budget in force.
    """
    from nasagent.agent.proposers import constraints_for
    from nasagent.evaluator.validation import check

    space = get_space(config.search_space)
    example = space.defaults.example_file
    try:
        arch = space.decode(config.seed_arch).architecture
    except BlockStringError as exc:
        noun = space.reply_format().answer_noun
        raise ConfigError(f"seed_arch is not a valid {noun}: {exc}; give one with --seed-arch"
                          f"{_examples(example)}") from None
    report = check(arch, constraints_for(config))
    if report.valid:
        return
    if any(error.kind is ViolationKind.OP for error in report.errors):
        raise ConfigError(_other_space(config.search_space, report, example))
    raise ConfigError(_broken_seed(report))


def _examples(example: str) -> str:
    return f" (examples: {example})" if example else ""


def _other_space(space: str, report: Report, example: str) -> str:
    wrong = next(error.message for error in report.errors if error.kind is ViolationKind.OP)
    holding = [name for name in spaces_holding(report.input, fitting_spaces())
               if name != space]
    origin = f" (it fits {holding[0]})" if holding else ""
    return (f"seed_arch does not fit search space {space}: {wrong}{origin}; give a {space} seed "
            f"with --seed-arch" + (f", e.g. one from {example}" if example else ""))


def fitting_spaces() -> list[SearchSpace]:
    """The built-in spaces, in registry order (for 'it fits X' hints; no plugin scan)."""
    return [SEARCH_SPACES.get(name) for name in SEARCH_SPACES.builtin_names()]


def _broken_seed(report: Report) -> str:
    problems = "; ".join(report.error_lines())
    if report.over_budget:
        return (f"seed_arch breaks the budget in force: {problems}. Give a smaller seed with "
                f"--seed-arch, or raise the budget (0 or none: no budget)")
    return f"seed_arch is invalid: {problems}"


def check_run_folder(path: Path, flag: str = "--out") -> None:
    """Refuse a folder path that names a file.

    Raises:
        ConfigError: `path` exists and is not a folder.
    """
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file, not a folder; choose a folder")


# ---- kinds of output folder ------------------------------------------------------------------


class FolderKindError(ConfigError):
    """An --out folder that holds another command's result, or files it would write over."""


@dataclass(frozen=True)
class FolderKind:
    """One kind of result folder, known by the marker files at its top.

    Attributes:
        holds: what the folder holds, as a sentence says it ("a single run").
        markers: files only this kind writes at the top of its folder.
        advice: what to do with such a folder instead; `{path}` is filled in.
        commands: the commands that write this kind of folder.
        writes: the other files it writes at the top of its folder (replacing any there).
    """

    holds: str
    markers: tuple[str, ...]
    advice: str
    commands: tuple[str, ...]
    writes: tuple[str, ...] = ()

    def found_in(self, path: Path) -> bool:
        return any((path / marker).exists() for marker in self.markers)

    def would_replace(self, path: Path) -> list[str]:
        """The files at the top of `path` this kind would write over."""
        return [name for name in (*self.markers, *self.writes) if (path / name).exists()]


FOLDER_KINDS: dict[str, FolderKind] = {
    "run": FolderKind(
        "a single run", (CONFIG_FILE, EVENTS_FILE),
        "resume it with `nasagent search --resume {path}`", ("search", "replay"),
        (LLM_CALLS_FILE, POPULATION_FILE, BEST_FILE, SUMMARY_FILE, DRIFT_FILE),
    ),
    "compare": FolderKind(
        "a comparison", (COMPARE_FILE,),
        "resume it with `nasagent compare --out {path}`", ("compare", "demo"),
        (SUMMARY_FILE, "report.html", *(f"{stem}.{ext}" for stem in
                                         ("best_so_far", "score_distribution")
                                         for ext in ("png", "pdf", "csv"))),
    ),
    "train": FolderKind(
        "a training", (METRICS_FILE, CHECKPOINT_FILE, WEIGHTS_FILE),
        "continue it with `nasagent train ARCH --out {path} --resume`", ("train",),
        ("learning_curve.png",),
    ),
    "study": FolderKind(
        "a correlation study", (STUDY_FILE,),
        "resume it with `nasagent correlate --out {path}`", ("correlate",),
        ("correlation.json", "correlate.html"),
    ),
}
"""Every kind of result folder a command writes; each command refuses an --out of another kind.

A folder that holds none of these kinds (a new folder, one holding the config file, notes, or
runs in subfolders) is accepted unless a file the command would write at its top is already
there (a summary.json of something else, say): that is refused too, so that nothing is
replaced. (The names in `writes` are those of agent.report, agent.plots, agent.correlate and
evaluator.training; a test checks that they agree.)"""


def folder_kinds(path: Path) -> list[str]:
    """The kinds of result `path` holds, by their marker files (none for a new folder)."""
    if not path.is_dir():
        return []
    return [name for name, kind in FOLDER_KINDS.items() if kind.found_in(path)]


def check_out_folder(path: Path, own: str, flag: str = "--out") -> None:
    """Refuse an output folder that holds another kind of result than `own` (or unknown files).

    Args:
        path: the folder the command is about to write.
        own: the kind of folder the command writes (a key of FOLDER_KINDS).
        flag: the option that named the folder, for the message.

    Raises:
        ConfigError: `path` is a file.
        FolderKindError: `path` holds another kind of result, or holds no known result but
            files the command would write over.
    """
    check_run_folder(path, flag)
    kinds = folder_kinds(path)
    mine = FOLDER_KINDS[own]
    other = next((FOLDER_KINDS[k] for k in kinds if k != own), None)
    if other is not None:
        raise FolderKindError(
            f"{flag} {path} holds {other.holds}, not {mine.holds}; "
            f"{other.advice.format(path=shlex.quote(str(path)))}, or choose another {flag}"
        )
    clashes = [] if kinds or not path.is_dir() else mine.would_replace(path)
    if clashes:
        raise FolderKindError(
            f"{flag} {path} holds no nasagent result but {', '.join(clashes)}, which "
            f"{mine.holds} would write over; choose a new or empty folder"
        )


def holds_single_run(path: Path) -> bool:
    """Whether `path` is one run's folder (config.toml or events.jsonl at its top)."""
    return FOLDER_KINDS["run"].found_in(path)


def check_resume(config: RunConfig, run_dir: Path) -> None:
    """Refuse to resume a folder that is not a run, or with fewer iterations than it ran.

    Raises:
        ConfigError: no config.toml, or `config.iterations` below the last logged iteration.
    """
    if not (run_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); cannot resume")
    done = max((e.iteration for e in read_events(run_dir) if e.phase == "search"), default=0)
    if config.iterations < done:
        raise ConfigError(
            f"{run_dir} has already run {done} iterations; --iterations {config.iterations} "
            f"would leave logged iterations beyond the budget. Give --iterations {done} or more"
        )
