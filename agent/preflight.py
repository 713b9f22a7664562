"""Checks on a run's inputs that come before anything is written: names, seed, folders.

`search` and `compare` call these before they create a run folder or compare.toml, so a
refused start leaves nothing behind. Names are checked with the registries' own lookups.
"""

from __future__ import annotations

from pathlib import Path

from nasagent.agent.config import ConfigError, RunConfig, score_settings_for
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.runlog import CONFIG_FILE, EVENTS_FILE, read_events
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


def holds_single_run(path: Path) -> bool:
    """Whether `path` is one run's folder (config.toml or events.jsonl at its top)."""
    return (path / CONFIG_FILE).exists() or (path / EVENTS_FILE).exists()


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
