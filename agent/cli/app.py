"""The typer application that every command module registers on."""

import typer

app = typer.Typer(
    name="nasagent",
    help="LLM-guided neural architecture search with zero-cost proxies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from nasagent import __version__

        typer.echo(f"nasagent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(  # noqa: ARG001  (handled by the callback)
        False, "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """LLM-guided neural architecture search with zero-cost proxies."""
