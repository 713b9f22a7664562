"""`nasagent correlate`: how well does each zero-cost proxy predict trained accuracy?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import (
    CombinedMembersOption,
    CombinedReferenceOption,
    MaxMemoryOption,
    ProxyDataOption,
    memory_cap_flag,
)
from nasagent.agent.cli.train_command import DATA_HELP, EXIT_ERROR, EXIT_INTERRUPTED
from nasagent.evaluator.errors import NasAgentError

Opt = typer.Option


def _default(key: str) -> str:
    """The default `--help` shows for a study setting (StudySettings' field default)."""
    from nasagent.agent.correlate import SPACE_KEYS, StudySettings

    shown = _shown(StudySettings.model_fields[key].default)
    return f"the search space's ({shown} in zennas-cifar)" if key in SPACE_KEYS else shown


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}".replace("e+0", "e").replace("e+", "e")  # 1e6, as the flags take it
    return ",".join(value) if isinstance(value, tuple) else str(value)


def SetOpt(key: str, **kwargs: Any) -> Any:  # noqa: N802
    """A typer option whose `--help` default is the study's (flags default to None)."""
    return typer.Option(show_default=_default(key), **kwargs)


@app.command()
def correlate(
    out: Annotated[Path, Opt("--out", help="Study directory (re-running on it resumes).")],
    archs: Annotated[int | None, SetOpt("archs", help="Architectures to sample.")] = None,
    proxies: Annotated[str | None, Opt(
        help="'all' or a comma list, e.g. zen,gradnorm.", show_default="all")] = None,
    data: Annotated[str | None, SetOpt("data", help=DATA_HELP)] = None,
    epochs: Annotated[
        int | None, SetOpt("epochs", help="Training epochs per architecture.")
    ] = None,
    batch_size: Annotated[int | None, SetOpt("batch_size", help="Training batch size.")] = None,
    lr: Annotated[float | None, SetOpt("lr", help="Peak learning rate.")] = None,
    resolution: Annotated[
        int | None, SetOpt("resolution", help="Training and scoring resolution.")
    ] = None,
    seed: Annotated[
        int | None, SetOpt("seed", help="Seed of sampling, scoring and training.")
    ] = None,
    score_batch_size: Annotated[
        int | None, SetOpt("score_batch_size", help="Proxy batch size.")
    ] = None,
    search_space: Annotated[
        str | None, SetOpt("search_space", help="A registered search space, e.g. zennas-cifar "
                                                "or nb201-cifar10.")
    ] = None,
    seed_arch: Annotated[str | None, Opt(
        help="The architecture the chains start from.",
        show_default="the search space's seed")] = None,
    structure: Annotated[
        str | None, SetOpt("structure", help="Structural rules: none or zennas.")
    ] = None,
    max_params: Annotated[
        float | None, SetOpt("max_params", help="Parameter budget (0 = none).")
    ] = None,
    max_flops: Annotated[float | None, SetOpt("max_flops", help="FLOPs budget (0 = none).")] = None,
    max_layers: Annotated[int | None, SetOpt("max_layers", help="Layer budget (0 = none).")] = None,
    max_chain: Annotated[int | None, SetOpt("max_chain", help="Longest mutation chain.")] = None,
    device: Annotated[str | None, SetOpt("device", help="auto, cpu or cuda.")] = None,
    max_memory: MaxMemoryOption = None,
    truth: Annotated[str | None, SetOpt("truth", help=(
        "training: train each architecture on --data; benchmark: cells drawn uniformly, "
        "accuracy from the space's benchmark table (nb201-*), no training."))] = None,
    proxy_data: ProxyDataOption = None,
    combined_members: CombinedMembersOption = None,
    combined_reference: CombinedReferenceOption = None,
    progress: Annotated[bool, Opt("--progress/--no-progress", help="Epoch bars.")] = False,
) -> None:
    """Sample architectures, score them with every proxy, train or look up each, rank-correlate.

    Each one's accuracy is held-out top-1 after brief training on --data, or (--truth
    benchmark) its test accuracy in the search space's benchmark table. Writes study.json,
    archs/ (scores, training and truth per architecture), correlation.json,
    scatter_<proxy>.png and correlate.html. Running it again on --out resumes.
    """
    from nasagent.agent.correlate import (
        REPORT_FILE,
        STUDY_FILE,
        refuse_seed_over_cap,
        resolve_study_settings,
        result_lines,
        run_study,
        write_outputs,
    )

    overrides = {
        "archs": archs, "proxies": _proxy_list(proxies), "data": data, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "resolution": resolution, "seed": seed,
        "score_batch_size": score_batch_size, "search_space": search_space,
        "seed_arch": seed_arch, "structure": structure, "max_chain": max_chain,
        "device": device, "truth": truth, "proxy_data": proxy_data,
        "combined_members": _proxy_list(combined_members, everything=False),
        "combined_reference": combined_reference,
        **_budgets(max_params, max_flops, max_layers),
    }
    cap = memory_cap_flag(max_memory)
    try:
        settings = resolve_study_settings(out, overrides)
        if not (out / STUDY_FILE).exists():  # before torch and the data load
            refuse_seed_over_cap(settings, cap)
    except NasAgentError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    from nasagent.evaluator.training import TrainingInterrupted

    try:
        records = run_study(settings, out, report=typer.echo, progress=progress, max_memory=cap)
        results = write_outputs(records, settings, out)
    except (TrainingInterrupted, KeyboardInterrupt):
        typer.echo(f"stopped: interrupted; resume with nasagent correlate --out {out}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (NasAgentError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    for line in result_lines(results):
        typer.echo(line)
    typer.echo(f"report: {out / REPORT_FILE}")


def _proxy_list(text: str | None, everything: bool = True) -> tuple[str, ...] | None:
    from nasagent.evaluator.proxies import PROXIES

    if text is None:
        return None
    if everything and text.strip() == "all":
        return tuple(PROXIES)
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _budgets(
    max_params: float | None, max_flops: float | None, max_layers: int | None
) -> dict[str, object]:
    """Budget flags; 0 means no budget, which the settings store as None."""
    given = {"max_params": max_params, "max_flops": max_flops, "max_layers": max_layers}
    from nasagent.agent.correlate import NO_BUDGET

    return {k: (NO_BUDGET if v == 0 else v) for k, v in given.items() if v is not None}
