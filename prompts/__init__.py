"""Jinja2 prompt templates, shipped as package data.

Templates are rendered with `StrictUndefined`, so a variable the caller forgot is an error rather
than an empty string in a prompt. Rendering is deterministic: the same context gives the same
bytes, which the replay backend relies on (it matches requests by a hash of the messages).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


@cache
def environment() -> Environment:
    """The shared template environment (templates are loaded once and cached)."""
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
