"""Jinja2 prompt templates, shipped as package data.

Templates are rendered with `StrictUndefined`, so a variable the caller forgot is an error rather
than an empty string in a prompt. Rendering is deterministic: the same context gives the same
bytes, which the replay backend relies on (it matches requests by a hash of the messages).

Prompts are versioned: each version is a folder (`v1/`, `v2/`) holding the same template names,
and a version's templates never change once runs were recorded with them, so a recorded run
replays against the very prompts it was recorded with. A run records its `prompt_version` in
config.toml; a run folder whose config has no such key predates versions and used version 1.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jinja2 loads on the first render: the version constants alone are cheap
    from jinja2 import Environment

PROMPT_VERSIONS = (1, 2, 3)
"""Every prompt version still shipped (each is a folder `v<N>/` of templates)."""

LATEST_PROMPT_VERSION = 3
"""The version new runs, `nasagent prompt` and `check-response` use."""

UNVERSIONED_PROMPT_VERSION = 1
"""The version of a run recorded before prompt versions existed (no `prompt_version` key)."""


def versioned(version: int, template_name: str) -> str:
    """The path of `template_name` (e.g. ``mutation_system.j2``) in prompt version `version`."""
    return f"v{version}/{template_name}"


@cache
def environment() -> Environment:
    """The shared template environment (templates are loaded once and cached)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("nasagent.prompts", "."),
        undefined=StrictUndefined,
        autoescape=False,  # plain-text prompts, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(template_name: str, **context: Any) -> str:
    """Render one template (e.g. ``mutation_system.j2``) and strip surrounding whitespace.

    Raises:
        jinja2.TemplateNotFound: no such template.
        jinja2.UndefinedError: the template uses a variable missing from `context`.
    """
    return environment().get_template(template_name).render(**context).strip()
