"""The typer application that every command module registers on, and the command registry.

Commands load lazily: `COMMANDS` names each command's module and its one-line help, so
`nasagent --help` lists every command without importing one, and `nasagent CMD` imports only
CMD's module (which registers CMD on `app` with `@app.command`). A command's start-up then
pays for what that command needs, not for every command's imports.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_command_name

if TYPE_CHECKING:  # typer vendors click from 0.20 on; older releases use the click package
    from typer._click import Command, Context
    from typer._click.exceptions import UsageError
else:
    UsageError = typer.BadParameter.__base__  # click's UsageError, whichever click typer runs

_PACKAGE = "nasagent.agent.cli"


@dataclass(frozen=True)
class CommandEntry:
    """Where a command lives and what `nasagent --help` says of it.

    Attributes:
        module: the module under nasagent.agent.cli that registers the command on `app`.
        summary: the first paragraph of the command's docstring (a test keeps them equal).
    """

    module: str
    summary: str


COMMANDS: dict[str, CommandEntry] = {
    "compare": CommandEntry("compare_commands", "Run the same search under several arms and "
                            "seeds, then write summary, plots and report."),
    "report": CommandEntry("compare_commands", "Rebuild the summary, plots and self-contained "
                           "report.html of DIR from its logs alone."),
    "train": CommandEntry("train_command", "Train with residual links (SGD + Nesterov, warm-up "
                          "+ cosine, label smoothing)."),
    "correlate": CommandEntry("correlate_command", "Sample architectures, score them with every "
                              "proxy, train or look up each, rank-correlate."),
    "demo": CommandEntry("demo_command", "Compare a replayed LLM search with random mutation: "
                         "offline, no API key."),
    "inspect": CommandEntry("inspect_command", "Check block strings against the search space "
                            "and budgets; print costs and every error."),
    "mutate": CommandEntry("mutate_command", "Propose mutations of ARCH: random ones of its "
                           "search space, or an LLM's proposals."),
    "plugins": CommandEntry("plugins_command", "List the search spaces, proxies, LLM backends "
                            "and mutators, built-in or from plugins."),
    "prompt": CommandEntry("prompt_commands", "Print the mutation prompt the model would "
                           "receive for ARCH."),
    "check-response": CommandEntry("prompt_commands", "Run one raw LLM reply through "
                                   "extraction and validation (no repair)."),
    "replay": CommandEntry("replay_command", "Re-run RUN_DIR from its config and LLM "
                           "recording, without network or API key."),
    "score": CommandEntry("score_command", "Score architectures with a zero-cost proxy "
                          "(seeded, reproducible)."),
    "search": CommandEntry("search_command", "Launch an LLM-guided (or random-mutation) "
                           "search, or resume one with --resume DIR."),
    "serve": CommandEntry("serve_command", "Serve check, score, mutate and runs over HTTP "
                          "(OpenAPI schema at /openapi.json)."),
}
"""Every command, in the order `nasagent --help` lists them."""


class LazyGroup(TyperGroup):
    """A typer group that imports a command's module only when the command is resolved.

    Until then a command is a stand-in that carries its name and summary, which is all the
    group's help shows. Commands already registered (their module was imported) are used as
    they are.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, entry in COMMANDS.items():
            self.commands.setdefault(name, _StandIn(name=name, help=entry.summary))
        self._listing = False

    def list_commands(self, ctx: Context) -> list[str]:  # noqa: ARG002  (click's signature)
        others = [name for name in self.commands if name not in COMMANDS]
        return [*COMMANDS, *others]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:  # noqa: ARG002
        command = self.commands.get(cmd_name)
        if isinstance(command, _StandIn) and not self._listing:
            command = self.commands[cmd_name] = _load(cmd_name)
        return command

    def format_help(self, ctx: Context, formatter: Any) -> None:
        self._listing = True  # the command list needs summaries only: import nothing
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the app; a usage error is one `error:` line on stderr and exit code 2, like
        every other refused input (typer would draw a box of several lines)."""
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except UsageError as error:
            if type(error).__name__ != "NoArgsIsHelpError":  # its help is printed already
                typer.echo(usage_error_line(error), err=True)
            sys.exit(error.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


_PYDANTIC_PREFIX = "Value error, "


def usage_error_line(error: UsageError) -> str:
    """`error: MESSAGE (see 'nasagent CMD --help')` on one line, from a click usage error.

    typer 0.29 checks values with pydantic, whose messages for a value refused by a validator
    start "Value error, "; that says nothing here and is dropped.
    """
    message = " ".join(error.format_message().split()).replace(_PYDANTIC_PREFIX, "")
    context = getattr(error, "ctx", None)
    hint = f" (see '{context.command_path} --help')" if context is not None else ""
    return f"error: {message}{hint}"


class _StandIn(TyperCommand):
    """A command whose module is not imported yet: its name and summary, for help listings."""


def import_command(argv: list[str]) -> None:
    """Import the module of the command `argv` names first, if any (start-up: see `main`)."""
    if argv and argv[0] in COMMANDS:
        _import_module_of(argv[0])


def _import_module_of(name: str) -> None:
    importlib.import_module(f"{_PACKAGE}.{COMMANDS[name].module}")


def _load(name: str) -> Command:
    """Import the module of command `name` and build its click command."""
    _import_module_of(name)
    for info in app.registered_commands:
        if (info.name or get_command_name(info.callback.__name__)) == name:  # type: ignore[union-attr]
            return get_command_from_info(info, pretty_exceptions_short=app.pretty_exceptions_short,
                                         rich_markup_mode=app.rich_markup_mode)
    raise LookupError(f"{COMMANDS[name].module} does not register the command {name!r}")


app = typer.Typer(
    name="nasagent",
    help="LLM-guided neural architecture search with zero-cost proxies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
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
