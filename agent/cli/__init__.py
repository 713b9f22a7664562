"""Command-line interface: `nasagent COMMAND --help` for each command.

Each command's module is imported when the command runs (see `app.COMMANDS`), so the
start-up of one command does not pay for the imports of the others.
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    """Console-script entry point: import the app and the chosen command, then run it.

    The start-up imports (pydantic, typer, the command's module) allocate hundreds of
    thousands of long-lived objects, and the cyclic collector would scan them over and over
    while they load (about a tenth of a non-scoring command's start-up). It is paused for the
    imports; what they created is then frozen out of later collections, which keeps a long
    search's collections short too.
    """
    gc.disable()
    try:
        from nasagent.agent.cli.app import app, import_command

        import_command(sys.argv[1:])
    finally:
        gc.freeze()
        gc.enable()
    app()
