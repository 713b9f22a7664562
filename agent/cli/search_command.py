"""`nasagent search`: launch or resume a search run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import (
    EXIT_USAGE,
    CombinedMembersOption,
    CombinedReferenceOption,
    MaxCostOption,
    MaxFlopsOption,
    MaxLayersOption,
    MaxMemoryOption,
    MaxParamsOption,
    MaxTotalTokensOption,
    NumClassesOption,
    ProxyDataOption,
    ResolutionOption,
    ScoreMemoryOption,
    ScoreTimeoutOption,
    SearchSpaceOption,
    SeedArchOption,
    fail,
)
from nasagent.agent.config import (
    EXECUTION_KEYS,
    ConfigError,
    RunConfig,
    load_config,
    load_run_config,
)
from nasagent.agent.llm.factory import BACKENDS
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.preflight import check_out_folder, check_run_folder
from nasagent.agent.runlog import CONFIG_FILE
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import PROXIES

EXIT_STOPPED = 3
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}
"""128 + the signal number, as a shell reports a process the signal ended."""


def _default(key: str) -> str:
    """The default `--help` shows for a RunConfig key (its field default)."""
    value = RunConfig.model_fields[key].default
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    return str(value)


def Opt(*decls: str, key: str | None = None, **kwargs: Any) -> Any:  # noqa: N802
    """A typer option whose `--help` default is the configuration's (flags default to None)."""
    if key is not None:
        kwargs.setdefault("show_default", _default(key))
    return typer.Option(*decls, **kwargs)


@app.command()
def search(
    config: Annotated[
        Path | None, Opt("--config", help="TOML file whose keys mirror the flags.")
    ] = None,
    resume: Annotated[
        Path | None, Opt("--resume", help="Continue the run in this directory.")
    ] = None,
    out: Annotated[
        Path | None, Opt("--out", help="Run directory.", show_default="runs/search-TIME")
    ] = None,
    llm: Annotated[str | None, Opt(
        key="llm", help=f"LLM backend spec: openai:MODEL, azure:DEPLOYMENT, scripted, "
                        f"manual:DIR, replay:PATH (backends: {BACKENDS.describe()}).",
    )] = None,
    model: Annotated[
        str | None, Opt(help="Model name sent to the endpoint.", show_default="--llm's name")
    ] = None,
    base_url: Annotated[
        str | None, Opt(help="OpenAI-compatible endpoint (vLLM, Ollama, ...).")
    ] = None,
    mutator: Annotated[str | None, Opt(
        key="mutator", help=f"Mutator: {MUTATORS.describe()}.")] = None,
    iterations: Annotated[int | None, Opt(
        key="iterations", help="Proposal budget (invalid ones count).")] = None,
    population: Annotated[int | None, Opt(key="population", help="Population size.")] = None,
    parent_selection: Annotated[
        str | None, Opt(key="parent_selection", help="uniform or tournament.")
    ] = None,
    seed: Annotated[int | None, Opt(
        key="seed", help="Run seed (parent choice, random mutation, sampling).")] = None,
    seed_arch: SeedArchOption = None,
    init_population: Annotated[int | None, Opt(
        key="init_population", help="Random initial members besides the seed.")] = None,
    concurrency: Annotated[
        int | None, Opt(key="concurrency", help="Proposals in flight at once.")
    ] = None,
    search_space: SearchSpaceOption = None,
    counting: Annotated[str | None, Opt(
        key="counting", help="Budget counting convention: exact or zennas.")] = None,
    max_params: MaxParamsOption = None,
    max_flops: MaxFlopsOption = None,
    max_layers: MaxLayersOption = None,
    structure: Annotated[str | None, Opt(
        key="structure", help="Structural rules: none or zennas (stem, 1x1 head, seed's strides).",
    )] = None,
    op_names: Annotated[str | None, Opt(
        key="op_names", help="How prompts name the space's elements: standard, or neutral (a "
        "benchmark space's contamination control).",
    )] = None,
    fitness: Annotated[str | None, Opt(
        key="fitness", help="What selection ranks by: proxy, or benchmark (the table's "
        "accuracy: a reference upper bound, for spaces with a table).",
    )] = None,
    proxy: Annotated[str | None, Opt(
        key="proxy", help=f"Zero-cost proxy: {PROXIES.describe()}.",
    )] = None,
    batch_size: Annotated[int | None, Opt(key="batch_size", help="Proxy batch size.")] = None,
    resolution: ResolutionOption = None,
    num_classes: NumClassesOption = None,
    score_seed: Annotated[
        int | None, Opt(key="score_seed", help="Seed of the proxy protocol.")
    ] = None,
    repeats: Annotated[
        int | None, Opt(key="repeats", help="Proxy repeats (mean over seeds).")
    ] = None,
    device: Annotated[str | None, Opt(key="device", help="auto, cpu or cuda.")] = None,
    residual: Annotated[bool | None, Opt(
        "--residual/--no-residual", help="Score with residual links.", show_default="no-residual",
    )] = None,
    proxy_data: ProxyDataOption = None,
    combined_members: CombinedMembersOption = None,
    combined_reference: CombinedReferenceOption = None,
    score_rtol: Annotated[float | None, Opt(
        key="score_rtol", help="With --llm replay:RUN, the relative drift beyond which this "
        "machine's rescoring is reported as differing from the recording.")] = None,
    temperature: Annotated[str | None, Opt(
        key="temperature", help="One temperature or a comma list sampled per call.")] = None,
    max_tokens: Annotated[
        int | None, Opt(key="max_tokens", help="Max completion tokens.")
    ] = None,
    llm_seed: Annotated[int | None, Opt(help="Seed sent to the endpoint.")] = None,
    response_format: Annotated[str | None, Opt(
        key="response_format", help="json_schema, json_object or none.")] = None,
    llm_timeout: Annotated[
        float | None, Opt(key="llm_timeout", help="Seconds per LLM call.")
    ] = None,
    max_repairs: Annotated[int | None, Opt(
        key="max_repairs", help="Re-asks with the validation errors.")] = None,
    replay_mode: Annotated[str | None, Opt(
        key="replay_mode", help="strict or sequential (replay backend).")] = None,
    reflection: Annotated[bool | None, Opt(
        "--reflection/--no-reflection", help="Short- and long-term reflection.",
        show_default="reflection",
    )] = None,
    history_size: Annotated[int | None, Opt(
        key="history_size", help="Recent outcomes shown per prompt.")] = None,
    reflect_every: Annotated[int | None, Opt(
        key="reflect_every", help="Iterations between reflection calls.")] = None,
    include_proxy_source: Annotated[bool | None, Opt(
        "--include-proxy-source", help="Show the proxy's code in the prompt.", show_default=False,
    )] = None,
    price_in: Annotated[
        float | None, Opt(help="USD per million input tokens of the run's model.")
    ] = None,
    price_out: Annotated[
        float | None, Opt(help="USD per million output tokens of the run's model.")
    ] = None,
    max_cost: MaxCostOption = None,
    max_total_tokens: MaxTotalTokensOption = None,
    workers: Annotated[int | None, Opt(
        key="workers", help="Scoring worker processes (0: score in this process).")] = None,
    threads: Annotated[int | None, Opt(
        help="Torch threads per scoring.", show_default="cores / workers")] = None,
    score_timeout: ScoreTimeoutOption = None,
    score_memory: ScoreMemoryOption = None,
    max_memory: MaxMemoryOption = None,
    executor: Annotated[str | None, Opt(
        key="executor", help="local, or ray (needs the ray extra: nasagent\\[ray]).")] = None,
    ray_address: Annotated[str | None, Opt(
        help="Ray cluster to score on.", show_default="RAY_ADDRESS or a local one")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Launch an LLM-guided (or random-mutation) search, or resume one with --resume DIR.

    Seed, resolution, classes and budgets default to the search space's; 0 or none: no budget.

    Ctrl-C or SIGTERM stops the run cleanly and prints the command that resumes it.

    Exit codes: 0 finished, 2 inputs refused (nothing written), 3 stopped, 130/143 interrupted.
    """
    overrides = {k: v for k, v in locals().items() if k not in _NOT_CONFIG}
    from nasagent.agent.search import RunInterrupted

    if isinstance(overrides.get("temperature"), str):
        overrides["temperature"] = _parse_floats(overrides["temperature"])
    try:
        run_config, run_dir = _resolve(config, resume, out, overrides)
        result = _run(run_config, run_dir, resume is not None, progress)
    except RunInterrupted as stop:
        typer.echo(f"interrupted by {stop.signal_name}; resume with: {stop.resume_command}",
                   err=True)
        raise typer.Exit(EXIT_SIGNAL[stop.signal_name]) from None
    except (NasAgentError, OSError) as exc:
        fail(str(exc), EXIT_USAGE)
    typer.echo(json.dumps(_result_line(result), indent=None))
    if not result.finished:
        typer.echo(f"stopped: {result.stopped_reason}", err=True)
        raise typer.Exit(EXIT_STOPPED)


_NOT_CONFIG = frozenset({"config", "resume", "out", "progress"})


def _resolve(
    config: Path | None, resume: Path | None, out: Path | None, overrides: dict[str, Any]
) -> tuple[RunConfig, Path]:
    if resume is None:
        run_dir = out or Path("runs") / time.strftime("search-%Y%m%d-%H%M%S")
        check_out_folder(run_dir, "run")
        return load_config(config, overrides), run_dir
    given = {k: v for k, v in overrides.items() if v is not None and k not in RESUME_KEYS}
    if config is not None or given:
        raise ConfigError(
            "--resume continues a run with its own config.toml; only --iterations, --max-cost, "
            "--max-total-tokens and the execution flags (--workers, --threads, --score-timeout, "
            "--score-memory, --max-memory, --executor, --ray-address) may be given "
            f"(got: {', '.join(sorted(given)) or '--config'})"
        )
    check_run_folder(resume, "--resume")
    if not (resume / CONFIG_FILE).exists():
        raise ConfigError(f"--resume {resume} is not a run folder (no {CONFIG_FILE})")
    budgets = {key: overrides.get(key) for key in RESUME_KEYS}
    return load_run_config(resume / CONFIG_FILE, budgets), resume


RESUME_KEYS = ("iterations", "max_cost", "max_total_tokens", *EXECUTION_KEYS)
"""Budgets a resumed run may raise, and where its scorings run; every other setting is the
run's own."""


def _run(config: RunConfig, run_dir: Path, resume: bool, progress: bool):  # noqa: ANN202
    from nasagent.agent.search import run_search

    return run_search(config, run_dir, resume=resume, progress=progress)


def _parse_floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        fail(f"--temperature expects numbers like 0.7 or 0.2,0.6,1.0: {text!r}")


def _result_line(result: Any) -> dict[str, Any]:
    best = result.best
    return {
        "run_dir": str(result.run_dir), "finished": result.finished,
        "best_arch": best.arch if best else None, "best_score": best.score if best else None,
    }
