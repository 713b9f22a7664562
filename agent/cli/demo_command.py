"""`nasagent demo`: the offline comparison of a replayed LLM run with the random baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasagent.agent.cli.app import app
from nasagent.agent.cli.compare_commands import EXIT_ERROR, exit_on_problems, print_summary
from nasagent.evaluator.errors import NasAgentError


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the comparison is written.")] = Path("runs/demo"),
    transcript: Annotated[str, typer.Option(help="Transcript in fixtures/transcripts/.")] = (
        "claude-manual-cifar"
    ),
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Compare a replayed LLM search with random mutation: offline, no API key.

    The LLM arm replays a recorded transcript exactly; the random arm runs the Zen-NAS
    operator under the same seeds, budgets and proxy. Re-running on the same --out resumes.
    """
    from nasagent.agent.compare import check_compare_folder, run_compare
    from nasagent.agent.demo import demo_plan, describe

    try:
        check_compare_folder(out)
        plan = demo_plan(out, transcript)
        typer.echo(f"LLM arm: replaying fixtures/transcripts/{transcript}, recorded as:")
        typer.echo(describe(transcript))
        result = run_compare(plan, out, progress=progress)
    except (NasAgentError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    summary = result.report.summary if result.report else {}
    print_summary(summary)
    typer.echo(f"report: {out / 'report.html'}")
    exit_on_problems(summary, f"nasagent demo --out {out}")
