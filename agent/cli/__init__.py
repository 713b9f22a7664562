"""Command-line interface: `nasagent COMMAND --help` for each command."""

from nasagent.agent.cli import (  # noqa: F401  (each module registers its commands on `app`)
    compare_commands,
    correlate_command,
    demo_command,
    inspect_command,
    mutate_command,
    plugins_command,
    prompt_commands,
    replay_command,
    score_command,
    search_command,
    serve_command,
    train_command,
)
from nasagent.agent.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()
