"""The typer application that every command module registers on."""

import typer

app = typer.Typer(
    name="nasagent",
    help="LLM-guided neural architecture search with zero-cost proxies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """LLM-guided neural architecture search with zero-cost proxies."""
