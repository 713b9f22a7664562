"""Command-line interface: `nasagent COMMAND --help` for each command.

Each command's module is imported when the command runs (see `app.COMMANDS`), so the
start-up of one command does not pay for the imports of the others.
"""

from nasagent.agent.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()
