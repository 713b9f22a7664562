"""Command-line interface: `nasagent COMMAND --help` for each command."""

from agent.cli import evaluator_commands  # noqa: F401  (registers inspect, score, mutate)
from agent.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()
