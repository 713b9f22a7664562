"""Command-line interface: `nasagent COMMAND --help` for each command.

Each command's module is imported when the command runs (see `app.COMMANDS`), so the
start-up of one command does not pay for the imports of the others.
"""

from __future__ import annotations

import gc
import os
import sys


def main() -> None:
    """Console-script entry point: import the app and the chosen command, then run it.

    The start-up imports (pydantic, typer, the command's module) leave some 34,000 objects
    that the cyclic collector tracks; it passed over them about 70 times while they loaded and
    again while the interpreter exited. It is paused for the imports, and what they created is
    then frozen out of later passes (exit included, and a long search's collections too):
    `inspect SEED` median 0.58 -> 0.44 s here (bench/startup.py).
    """
    _pin_kernels()
    gc.disable()
    try:
        from nasagent.agent.cli.app import app, import_command

        import_command(sys.argv[1:])
    finally:
        gc.freeze()
        gc.enable()
    try:
        app()
    except Exception as error:  # a bug, not an input problem: one line, not a traceback
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"error: internal error in nasagent {' '.join(sys.argv[1:2])}: "
              f"{type(error).__name__}: {error} (nothing was refused; {DEBUG_VARIABLE}=1 shows "
              f"the traceback; please report it)", file=sys.stderr)
        raise SystemExit(EXIT_INTERNAL) from None


DEBUG_VARIABLE = "NASAGENT_DEBUG"
"""Set (to anything) to let an internal error raise with its traceback."""
EXIT_INTERNAL = 70
"""The exit code of an internal error (sysexits' EX_SOFTWARE): never an input's fault."""


def _pin_kernels() -> None:
    """Pin torch's CPU kernels before any command can run torch (evaluator.cpu_kernels): a
    command may compute with torch (load data, say) before it scores."""
    from nasagent.evaluator import cpu_kernels

    try:
        cpu_kernels.pin()
    except cpu_kernels.KernelChoiceError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
