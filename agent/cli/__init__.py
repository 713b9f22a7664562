"""Command-line interface: `nasagent COMMAND --help` for each command."""

from agent.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()
