"""`nasagent correlate`: how well does each zero-cost proxy predict trained accuracy?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasagent.agent.cli.app import app
from nasagent.agent.cli.train_command import DATA_HELP, EXIT_ERROR, EXIT_INTERRUPTED
from nasagent.evaluator.errors import NasAgentError

Opt = typer.Option


@app.command()
def correlate(
    out: Annotated[Path, Opt("--out", help="Study directory (re-running on it resumes).")],
    archs: Annotated[int | None, Opt(help="Architectures to sample (default 30).")] = None,
    proxies: Annotated[str | None, Opt(help="'all' or a comma list, e.g. zen,gradnorm.")] = None,
    data: Annotated[str | None, Opt(help=DATA_HELP + " Default digits.")] = None,
    epochs: Annotated[int | None, Opt(help="Training epochs per architecture (default 5).")] = None,
    batch_size: Annotated[int | None, Opt(help="Training batch size (default 128).")] = None,
    lr: Annotated[float | None, Opt(help="Peak learning rate (default 0.1).")] = None,
    resolution: Annotated[int | None, Opt(help="Training and scoring resolution (32).")] = None,
    seed: Annotated[int | None, Opt(help="Seed of sampling, scoring and training (0).")] = None,
    score_batch_size: Annotated[int | None, Opt(help="Proxy batch size (64).")] = None,
    search_space: Annotated[str | None, Opt(help="zennas-cifar, zennas-imagenet or all.")] = None,
    seed_arch: Annotated[str | None, Opt(help="The architecture the chains start from.")] = None,
    structure: Annotated[str | None, Opt(help="Structural rules: none or zennas.")] = None,
    max_params: Annotated[float | None, Opt(help="Parameter budget (1e6; 0 = none).")] = None,
    max_flops: Annotated[float | None, Opt(help="FLOPs budget (0 = none).")] = None,
    max_layers: Annotated[int | None, Opt(help="Layer budget (18; 0 = none).")] = None,
    max_chain: Annotated[int | None, Opt(help="Longest mutation chain (12).")] = None,
    device: Annotated[str | None, Opt(help="auto, cpu or cuda.")] = None,
    progress: Annotated[bool, Opt("--progress/--no-progress", help="Epoch bars.")] = False,
) -> None:
    """Sample architectures, score them with every proxy, train each, rank-correlate.

    Writes study.json, archs/ (scores and training per architecture), correlation.json,
    scatter_<proxy>.png and correlate.html. Running it again on --out resumes.
    """
    from nasagent.agent.correlate import (
        REPORT_FILE,
        interval_text,
        resolve_study_settings,
        run_study,
        write_outputs,
    )

    overrides = {
        "archs": archs, "proxies": _proxy_list(proxies), "data": data, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "resolution": resolution, "seed": seed,
        "score_batch_size": score_batch_size, "search_space": search_space,
        "seed_arch": seed_arch, "structure": structure, "max_chain": max_chain,
        "device": device, **_budgets(max_params, max_flops, max_layers),
    }
    from nasagent.evaluator.training import TrainingInterrupted

    try:
        settings = resolve_study_settings(out, overrides)
        records = run_study(settings, out, report=typer.echo, progress=progress)
        results = write_outputs(records, settings, out)
    except (TrainingInterrupted, KeyboardInterrupt):
        typer.echo(f"stopped: interrupted; resume with nasagent correlate --out {out}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (NasAgentError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    for entry in results["proxies"]:
        typer.echo(f"{entry['proxy']:>9}: tau {interval_text(entry['kendall_tau'])}, "
                   f"rho {interval_text(entry['spearman_rho'])} (n={entry['n']})")
    typer.echo(f"report: {out / REPORT_FILE}")


def _proxy_list(text: str | None) -> tuple[str, ...] | None:
    from nasagent.evaluator.proxies import PROXIES

    if text is None:
        return None
    if text.strip() == "all":
        return tuple(PROXIES)
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _budgets(
    max_params: float | None, max_flops: float | None, max_layers: int | None
) -> dict[str, object]:
    """Budget flags; 0 means no budget, which the settings store as None."""
    given = {"max_params": max_params, "max_flops": max_flops, "max_layers": max_layers}
    from nasagent.agent.correlate import NO_BUDGET

    return {k: (NO_BUDGET if v == 0 else v) for k, v in given.items() if v is not None}
