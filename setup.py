"""Maps the repository's top-level folders into the one installed namespace, `nasagent`.

The repository keeps `agent/`, `evaluator/`, `prompts/` and `fixtures/` at the top level; the
distribution installs them as `nasagent.agent`, `nasagent.evaluator`, ... and nothing else at
top level. Their subpackages are discovered, never listed by hand. Everything else about the
distribution is declared in pyproject.toml.
"""

from setuptools import find_namespace_packages, find_packages, setup

ROOTS = ("agent", "evaluator", "prompts", "fixtures")
DATA_ROOTS = ("prompts", "fixtures")
"""Roots whose subfolders hold only package data (templates, recordings): each folder with an
importable name is listed as a (namespace) package, as setuptools expects of data folders."""
TEST_ONLY = ("fixtures.responses",)
"""Data folders the tests read from the checkout and the distribution never ships."""


def _patterns(roots: tuple[str, ...]) -> list[str]:
    return [pattern for root in roots for pattern in (root, f"{root}.*")]


def _discovered() -> list[str]:
    code = find_packages(include=_patterns(ROOTS))
    data = find_namespace_packages(include=_patterns(DATA_ROOTS), exclude=_patterns(TEST_ONLY))
    names = sorted(set(code) | {name for name in data if all(part.isidentifier()
                                                             for part in name.split("."))})
    return ["nasagent", *(f"nasagent.{name}" for name in names)]


setup(
    packages=_discovered(),
    package_dir={"nasagent": "nasagent", **{f"nasagent.{root}": root for root in ROOTS}},
)
