"""Maps the repository's top-level folders into the one installed namespace, `nasagent`.

The repository keeps `agent/`, `evaluator/`, `prompts/` and `fixtures/` at the top level; the
distribution installs them as `nasagent.agent`, `nasagent.evaluator`, ... and nothing else at
top level. Their subpackages are discovered, never listed by hand. Everything else about the
distribution is declared in pyproject.toml.
"""

from setuptools import find_packages, setup

ROOTS = ("agent", "evaluator", "prompts", "fixtures")


def _discovered() -> list[str]:
    found = find_packages(include=[pattern for root in ROOTS for pattern in (root, f"{root}.*")])
    return ["nasagent", *(f"nasagent.{name}" for name in found)]


setup(
    packages=_discovered(),
    package_dir={"nasagent": "nasagent", **{f"nasagent.{root}": root for root in ROOTS}},
)
