"""`nasagent plugins`: every name the registries know, and where each comes from."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from nasagent.agent.cli.app import app
from nasagent.evaluator.errors import NasAgentError


def _registries() -> dict[str, Any]:
    from nasagent.agent.llm.factory import BACKENDS
    from nasagent.agent.mutators import MUTATORS
    from nasagent.evaluator.proxies import PROXIES
    from nasagent.evaluator.spaces import SEARCH_SPACES

    return {"search spaces": SEARCH_SPACES, "proxies": PROXIES, "LLM backends": BACKENDS,
            "mutators": MUTATORS}


@app.command("plugins")
def plugins_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """List the search spaces, proxies, LLM backends and mutators, built-in or from plugins.

    Plugins register through the entry-point groups nasagent.search_spaces, nasagent.proxies,
    nasagent.backends and nasagent.mutators; a plugin is listed without being imported.
    """
    registries = _registries()
    try:
        listing = {
            title: {name: registry.origin(name) for name in registry.names()}
            for title, registry in registries.items()
        }
    except NasAgentError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(listing, indent=2))
        return
    for title, names in listing.items():
        entries = ", ".join(name if origin == "built-in" else f"{name} ({origin})"
                            for name, origin in names.items())
        typer.echo(f"{title} ({registries[title].group}): {entries}")
