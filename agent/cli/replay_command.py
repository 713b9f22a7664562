"""`nasagent replay`: reproduce a recorded run offline and report any difference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasagent.agent.cli.app import app
from nasagent.agent.config import ConfigError
from nasagent.evaluator.errors import NasAgentError


@app.command()
def replay(
    run_dir: Annotated[Path, typer.Argument(help="A recorded run directory.")],
    out: Annotated[Path | None, typer.Option(
        help="Where to write the replayed run.", show_default="RUN_DIR-replay, beside RUN_DIR",
    )] = None,
    rescore: Annotated[bool, typer.Option(
        "--rescore/--no-rescore", help="Score again, or reuse the recorded scores."
    )] = True,
    score_rtol: Annotated[float | None, typer.Option(
        "--score-rtol", min=0.0,
        help="Relative tolerance within which a rescored architecture keeps its recorded "
        "score.", show_default="the run's score_rtol, 1e-3",
    )] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Re-run RUN_DIR from its config and LLM recording, without network or API key.

    Scores that agree with the recorded ones within --score-rtol are taken as recorded, so a
    replay on another CPU follows the recorded trajectory; the drift is reported. Exit 0 when
    identical, 1 when any event differs, 2 when the replay could not run.
    """
    from nasagent.agent.reference import describe_drift
    from nasagent.agent.replay import MAX_REPORTED_DIFFERENCES, replay_run

    try:
        target = out or default_replay_dir(run_dir)
        report = replay_run(
            run_dir, target, rescore=rescore, progress=progress, score_rtol=score_rtol
        )
    except (NasAgentError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"replayed {run_dir} -> {target}: {report.replayed_events} events "
               f"({report.recorded_events} recorded)")
    if rescore:
        typer.echo(describe_drift(report.drift))
    if report.identical:
        typer.echo("identical: same outcomes, architectures and scores")
        return
    typer.echo(f"{len(report.differences)} events differ:", err=True)
    for difference in report.differences[:MAX_REPORTED_DIFFERENCES]:
        typer.echo("  " + difference.describe(), err=True)
    raise typer.Exit(1)


def default_replay_dir(run_dir: Path) -> Path:
    """RUN_DIR-replay next to RUN_DIR; `.` and `..` are named by the folder they stand for."""
    named = run_dir if run_dir.name not in ("", ".", "..") else run_dir.resolve()
    if not named.name:
        raise ConfigError(f"cannot place a replay next to {run_dir}; give --out")
    return named.with_name(named.name + "-replay")
