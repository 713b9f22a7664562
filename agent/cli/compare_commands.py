"""`nasagent compare` (arms x seeds, then a report) and `nasagent report DIR` (rebuild it)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import (
    CompareMaxCostOption,
    CompareMaxTotalTokensOption,
    MaxFlopsOption,
    MaxLayersOption,
    MaxMemoryOption,
    MaxParamsOption,
    NumClassesOption,
    ProxyDataOption,
    ResolutionOption,
    ScoreMemoryOption,
    ScoreTimeoutOption,
    SearchSpaceOption,
    SeedArchOption,
)
from nasagent.agent.cli.search_command import Opt  # its defaults are RunConfig's, as in search
from nasagent.evaluator.errors import NasAgentError

EXIT_ERROR = 2
EXIT_STOPPED = 3
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


def _split(text: str | None, flag: str, kind: type[int] | type[str]) -> list[Any] | None:
    if text is None:
        return None
    try:
        return [kind(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{flag} expects a comma-separated list: {text!r}") from None


@app.command()
def compare(
    config: Annotated[Path | None, Opt("--config", help="TOML file like `search`'s.")] = None,
    llm: Annotated[str | None, Opt(
        key="llm", help="LLM of the llm arm (openai:MODEL, scripted...).")] = None,
    arms: Annotated[str | None, Opt(
        help="Comma-separated arms: \\[arms.NAME] of the config, or llm, random.",
        show_default="the config's arms, else llm,random")] = None,
    seeds: Annotated[int | None, Opt(
        help="Seeds per arm: values 0..S-1.", show_default="5, unless --seed-list")] = None,
    seed_list: Annotated[str | None, Opt("--seed-list", help="Seed values, e.g. 3,7,11.")] = None,
    iterations: Annotated[
        int | None, Opt(key="iterations", help="Proposal budget per run.")
    ] = None,
    out: Annotated[Path | None, Opt(
        "--out", help="Directory.", show_default="runs/compare-TIME")] = None,
    proxy: Annotated[str | None, Opt(key="proxy", help="Zero-cost proxy.")] = None,
    search_space: SearchSpaceOption = None,
    seed_arch: SeedArchOption = None,
    max_params: MaxParamsOption = None,
    max_flops: MaxFlopsOption = None,
    max_layers: MaxLayersOption = None,
    resolution: ResolutionOption = None,
    num_classes: NumClassesOption = None,
    structure: Annotated[str | None, Opt(
        key="structure", help="Structural rules: none or zennas.")] = None,
    op_names: Annotated[str | None, Opt(
        key="op_names", help="How prompts name the space's elements: standard or neutral "
        "(every arm; an [arms.NAME] table may set its own).")] = None,
    concurrency: Annotated[int | None, Opt(
        key="concurrency", help="Proposals in flight at once, per run.")] = None,
    population: Annotated[int | None, Opt(key="population", help="Population size.")] = None,
    init_population: Annotated[int | None, Opt(
        key="init_population", help="Random initial members besides the seed.")] = None,
    batch_size: Annotated[int | None, Opt(key="batch_size", help="Proxy batch size.")] = None,
    proxy_data: ProxyDataOption = None,
    max_cost: CompareMaxCostOption = None,
    max_total_tokens: CompareMaxTotalTokensOption = None,
    train_best: Annotated[int | None, Opt(
        "--train-best", min=1, help="Then train each run's best architecture for E epochs.",
    )] = None,
    data: Annotated[str, Opt(help="Data for --train-best: digits, cifar10:DIR, cifar100:DIR, "
                                  "imagefolder:DIR.")] = "digits",
    score_rtol: Annotated[float | None, Opt(
        key="score_rtol",
        help="Relative drift beyond which a replayed arm's rescoring is reported as "
        "differing from the recording.")] = None,
    jobs: Annotated[int, Opt(min=1, help="Runs at once; they share one scoring pool.")] = 1,
    workers: Annotated[
        int | None, Opt(help="Scoring workers (with --jobs > 1: shared).",
                        show_default="0; with --jobs > 1: the cores")
    ] = None,
    threads: Annotated[
        int | None, Opt(help="Torch threads per scoring.", show_default="cores / workers")
    ] = None,
    score_timeout: ScoreTimeoutOption = None,
    score_memory: ScoreMemoryOption = None,
    max_memory: MaxMemoryOption = None,
    executor: Annotated[
        str | None,
        Opt(key="executor", help="local, or ray (needs the ray extra: nasagent\\[ray])."),
    ] = None,
    ray_address: Annotated[
        str | None, Opt(help="Ray cluster to score on.", show_default="RAY_ADDRESS or a local one")
    ] = None,
    progress: Annotated[bool, Opt("--progress/--no-progress")] = True,
) -> None:
    """Run the same search under several arms and seeds, then write summary, plots and report.

    Running it again on the same --out resumes: finished runs are skipped, partial ones resumed.
    With --train-best E each run's best architecture is then trained (cached in RUN/trained/)
    and the report adds held-out top-1 per arm and its test beside the proxy score.
    The execution flags (--jobs, --workers, --threads, --score-timeout, --score-memory,
    --max-memory, --executor and --ray-address) may differ between invocations: they never
    change a score.

    Ctrl-C or SIGTERM stops cleanly and prints the command that resumes the comparison.
    """
    overrides = {
        "llm": llm, "iterations": iterations, "proxy": proxy, "max_params": max_params,
        "max_flops": max_flops, "max_layers": max_layers, "concurrency": concurrency,
        "population": population, "init_population": init_population,
        "search_space": search_space, "batch_size": batch_size, "proxy_data": proxy_data,
        "max_cost": max_cost, "max_total_tokens": max_total_tokens,
        "structure": structure, "op_names": op_names,
        "score_rtol": score_rtol,
        "workers": workers, "threads": threads, "score_timeout": score_timeout,
        "score_memory": score_memory, "max_memory": max_memory,
        "executor": executor, "ray_address": ray_address,
        "seed_arch": seed_arch, "resolution": resolution, "num_classes": num_classes,
    }
    if seeds is not None and seed_list is not None:
        raise typer.BadParameter("give either --seeds or --seed-list, not both")
    seed_values = _split(seed_list, "--seed-list", int)
    if seeds is not None:
        seed_values = list(range(seeds))
    directory = out or Path("runs") / time.strftime("compare-%Y%m%d-%H%M%S")
    try:
        _refuse_seed_early(config, overrides, directory)
    except NasAgentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    from nasagent.agent.compare import (
        check_compare_folder,
        check_plan_inputs,
        resolve_plan,
        run_compare,
    )
    from nasagent.agent.search import RunInterrupted

    try:
        check_compare_folder(directory)
        plan = resolve_plan(directory, config_path=config, overrides=overrides,
                            arms=_split(arms, "--arms", str), seeds=seed_values)
        check_plan_inputs(plan)
        typer.echo(f"comparison folder: {directory}", err=True)
        result = run_compare(plan, directory, progress=progress, jobs=jobs)
        if train_best is not None:
            result.report = _train_best(directory, train_best, data, progress,
                                        plan.config.memory_cap_mb)
    except RunInterrupted as stop:
        typer.echo(f"interrupted by {stop.signal_name} in {stop.run_dir}; resume with: "
                   f"{resume_compare(directory)}", err=True)
        raise typer.Exit(EXIT_SIGNAL[stop.signal_name]) from None
    except (NasAgentError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    summary = result.report.summary if result.report else {}
    print_summary(summary)
    typer.echo(f"report: {directory / 'report.html'}")
    for record in result.stopped:
        typer.echo(f"stopped: {record.run_dir}: {record.stopped_reason}", err=True)
    budget = plan.config.max_cost is not None or plan.config.max_total_tokens is not None
    raise_it = " (with a higher --max-cost / --max-total-tokens)" if budget else ""
    exit_on_problems(summary, f"{resume_compare(directory)}{raise_it}")


def _refuse_seed_early(
    config_path: Path | None, overrides: dict[str, Any], directory: Path
) -> None:
    """A new comparison's seed over the memory cap, refused before compare's imports (scipy,
    matplotlib: seconds). Arms share the seed and the batch size, so one check is exact; the
    plan's own checks (check_plan_inputs) report everything else.

    Raises:
        MemoryCapError: the seed's sentence.
    """
    if directory.exists():  # a re-run: its stored plan is checked as it is
        return
    from nasagent.agent.config import load_config
    from nasagent.agent.preflight import check_seed, check_seed_memory, replays_recording

    try:
        shared = load_config(config_path, overrides)
        check_seed(shared)
    except NasAgentError:
        return
    if not replays_recording(shared):
        check_seed_memory(shared)


def _train_best(
    directory: Path, epochs: int, data: str, progress: bool, max_memory: float | None
) -> Any:
    """Train every run's best architecture, then rebuild the report with the accuracies."""
    from nasagent.agent.report import build_report
    from nasagent.agent.train_best import train_runs
    from nasagent.evaluator.training import TrainingInterrupted

    try:
        trained = train_runs(directory, epochs=epochs, data_spec=data, progress=progress,
                             max_memory=max_memory)
    except TrainingInterrupted:
        typer.echo(f"stopped: interrupted; the same command resumes the training of "
                   f"{directory}", err=True)
        raise typer.Exit(EXIT_STOPPED) from None
    for run in trained:
        if run.top1 is None:
            typer.echo(f"not trained: {run.run_dir}: {run.message}", err=True)
    return build_report(directory)


def resume_compare(directory: Path) -> str:
    """The command that continues the comparison in `directory` (its compare.toml)."""
    return f"nasagent compare --out {shlex.quote(str(directory))}"


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="A compare directory or one run directory.")],
) -> None:
    """Rebuild the summary, plots and self-contained report.html of DIR from its logs alone."""
    from nasagent.agent.report import REPORT_FILE, build_report

    try:
        result = build_report(directory)
    except (NasAgentError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    print_summary(result.summary)
    typer.echo(f"report: {directory / REPORT_FILE}")
    exit_on_problems(result.summary, None)


def print_summary(summary: dict[str, Any]) -> None:
    """The report header, the comparison table and the test lines, on stdout."""
    from nasagent.agent.report import (
        header_lines,
        p_value_lines,
        rich_table,
        score_check_lines,
    )

    for line in header_lines(summary):
        typer.echo(line)
    Console().print(rich_table(summary))
    for line in [*p_value_lines(summary), *score_check_lines(summary)]:
        typer.echo(line)


def exit_on_problems(summary: dict[str, Any], resume: str | None) -> None:
    """Name every missing, failed or stopped run on stderr and exit 3 when there is one."""
    from nasagent.agent.report import problem_lines

    problems = problem_lines(summary)
    if not problems:
        return
    typer.echo(f"{len(problems)} run(s) not counted as seeds:", err=True)
    for line in problems:
        typer.echo(f"  {line}", err=True)
    if resume:
        typer.echo(f"resume with: {resume}", err=True)
    raise typer.Exit(EXIT_STOPPED)
