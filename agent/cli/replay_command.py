"""`nasagent replay`: reproduce a recorded run offline and report any difference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import MaxMemoryOption, memory_cap_flag
from nasagent.agent.config import ConfigError
from nasagent.evaluator.errors import NasAgentError


@app.command()
def replay(
    run_dir: Annotated[Path, typer.Argument(help="A recorded run directory.")],
    out: Annotated[Path | None, typer.Option(
        help="Where to write the replayed run.", show_default="RUN_DIR-replay, beside RUN_DIR",
    )] = None,
    rescore: Annotated[bool, typer.Option(
        "--rescore/--no-rescore",
        help="Score every architecture again as a check against the recording, or not at all.",
    )] = True,
    score_rtol: Annotated[float | None, typer.Option(
        "--score-rtol", min=0.0,
        help="Relative drift beyond which a rescored architecture is reported as differing.",
        show_default="the run's score_rtol, 1e-3",
    )] = None,
    strict_scores: Annotated[bool, typer.Option(
        "--strict-scores",
        help="Exit 1 when any rescoring differs from the recording beyond --score-rtol.",
    )] = False,
    max_memory: MaxMemoryOption = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Re-run RUN_DIR from its config and LLM recording, without network or API key.

    Every decision is taken from the recorded scores, so the replay follows the recorded
    trajectory on any CPU; rescoring on this machine is a check beside it, reported as drift
    with a one-line verdict. Exit 0 when the run was reproduced (also when scores drift, unless
    --strict-scores), 1 when any event differs, 2 when the replay could not run.
    """
    from nasagent.agent.replay import MAX_REPORTED_DIFFERENCES, replay_run

    cap = memory_cap_flag(max_memory)  # this machine's cap, never the recording's
    try:
        target = out or default_replay_dir(run_dir)
        report = replay_run(
            run_dir, target, rescore=rescore, progress=progress, score_rtol=score_rtol,
            max_memory=cap,
        )
    except (NasAgentError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"replayed {run_dir} -> {target}: {report.replayed_events} events "
               f"({report.recorded_events} recorded)")
    if rescore:
        typer.echo(report.drift["verdict"])
    if not report.identical:
        typer.echo(f"{len(report.differences)} events differ:", err=True)
        for difference in report.differences[:MAX_REPORTED_DIFFERENCES]:
            typer.echo("  " + difference.describe(), err=True)
        raise typer.Exit(1)
    typer.echo("reproduced: the same outcomes, architectures and recorded scores")
    if strict_scores and not report.scores_agree:
        typer.echo("error: --strict-scores: rescored scores differ from the recording beyond "
                   "the tolerance (see the line above)", err=True)
        raise typer.Exit(1)


def default_replay_dir(run_dir: Path) -> Path:
    """RUN_DIR-replay next to RUN_DIR; `.` and `..` are named by the folder they stand for."""
    named = run_dir if run_dir.name not in ("", ".", "..") else run_dir.resolve()
    if not named.name:
        raise ConfigError(f"cannot place a replay next to {run_dir}; give --out")
    return named.with_name(named.name + "-replay")
