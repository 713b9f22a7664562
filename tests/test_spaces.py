"""Every search space behind one interface: a conformance test over the registered spaces, and
a toy third space installed the way a plugin is, searched and compared from the CLI."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nasagent.agent.config import RunConfig
from nasagent.agent.prompting import PromptSettings, mutation_messages
from nasagent.agent.proposers import prompt_settings_for
from nasagent.evaluator.proxies import ScoreSettings
from nasagent.evaluator.spaces import SEARCH_SPACES, get_space
from nasagent.evaluator.spaces.base import SearchSpace
from nasagent.evaluator.validation import Constraints, check

BUILT_IN = SEARCH_SPACES.builtin_names()


def _walk(space: SearchSpace, steps: int, seed: int) -> list[object]:
    """The seed and `steps` random mutations of it, each of the previous one."""
    rng = random.Random(seed)
    arch = space.decode(space.defaults.seed_arch).architecture
    archs = [arch]
    for _ in range(steps):
        arch = space.drawn_mutator(rng, {}).mutate(arch, num_replaces=1)
        archs.append(arch)
    return archs


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_space_round_trips_its_canonical_strings(name: str) -> None:
    space = get_space(name)
    for arch in _walk(space, 20, 0):
        text = space.encode(arch)
        assert space.encode(space.decode(text).architecture) == text == space.canonical(text)
        for naming in space.namings:
            shown = space.encode(arch, naming)
            assert space.encode(space.decode(shown, naming).architecture) == text


@pytest.mark.parametrize("name", BUILT_IN)
def test_mutations_of_the_seed_stay_in_the_space_and_are_costed(name: str) -> None:
    space = get_space(name)
    rules = Constraints(search_space=name).unbudgeted()
    for arch in _walk(space, 30, 1):
        report = check(arch, rules)
        assert report.valid, report.error_lines()
        assert report.cost is not None and report.cost.params > 0
        assert space.memory(arch, rules, 64).bytes > 0


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_analytic_parameter_count_is_the_built_networks(name: str) -> None:
    space = get_space(name)
    defaults = space.defaults
    settings = ScoreSettings(search_space=name, resolution=defaults.resolution,
                             num_classes=defaults.num_classes)
    for arch in _walk(space, 3, 2):
        model = space.train_model(arch, defaults.num_classes)
        counted = sum(p.numel() for p in model.parameters())
        assert space.cost(arch, Constraints(search_space=name)).params == counted  # type: ignore[union-attr]
        assert space.scoring_model(arch, settings) is not None


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_generic_prompt_renders_from_the_space_facts(name: str) -> None:
    space = get_space(name)
    config = RunConfig(search_space=name, prompt_version=3)
    system, user = (m["content"] for m in mutation_messages(
        space.defaults.seed_arch, None, prompt_settings_for(config)))
    facts = space.prompt_facts(Constraints(search_space=name), {})
    for element, _ in facts.elements:
        assert f"## {element}" in system
    assert space.defaults.seed_arch in user and facts.answer_noun in system


TOY_MODULE = '''
"""A toy search space: a chain of 3x3 convolutions written as their widths, "8-16-32"."""

import random

from nasagent.evaluator.errors import BlockStringError
from nasagent.evaluator.spaces.base import (
    Cost, Decoded, MemoryEstimate, Metric, PromptFacts, SearchSpace, SpaceDefaults,
    WorkedExample,
)
from nasagent.evaluator.validation import Violation, ViolationKind

WIDTHS = (8, 16, 24, 32)


class Chain(SearchSpace):
    name = "toy"
    description = "A chain of 3x3 conv-BN-ReLU layers."
    defaults = SpaceDefaults(seed_arch="8-16", resolution=8, num_classes=4)
    metrics = (Metric("params", "params", "parameter", "at most {limit} parameters",
                      "params {value} exceed the budget of {limit}; use narrower layers"),
               Metric("flops", "FLOPs", "FLOP", "at most {limit} FLOPs",
                      "FLOPs {value} exceed the budget of {limit}"))

    def decode(self, text, naming="standard"):
        try:
            widths = tuple(int(part) for part in text.strip().split("-"))
        except ValueError:
            raise BlockStringError(f"{text!r}: write widths like 8-16", 0) from None
        return Decoded(widths)

    def encode(self, arch, naming="standard"):
        return "-".join(map(str, arch))

    def looks_like(self, line):
        return line.replace("-", "").isdigit()

    def violations(self, arch, constraints):
        return [Violation(block=i, field="width", kind=ViolationKind.CHANNELS,
                          message=f"layer {i}: width {w} must be one of {WIDTHS}")
                for i, w in enumerate(arch) if w not in WIDTHS]

    def cost(self, arch, constraints):
        if any(w not in WIDTHS for w in arch):
            return None
        params, flops, previous = 0, 0, 3
        for width in arch:
            params += previous * width * 9 + 2 * width
            flops += previous * width * 9 * constraints.resolution ** 2
            previous = width
        head = previous * constraints.num_classes
        return Cost(params + head + constraints.num_classes, flops + head)

    def memory(self, arch, constraints, batch_size):
        return MemoryEstimate(self.cost(arch, constraints).params,
                              3 * sum(arch) * constraints.resolution ** 2, batch_size)

    def mutator(self, seed, options):
        return _Mutator(seed)

    def scoring_model(self, arch, settings):
        return _network(arch, settings.num_classes)

    def train_model(self, arch, num_classes):
        return _network(arch, num_classes)

    def prompt_facts(self, constraints, options):
        return PromptFacts(
            title=self.name, description=self.description, answer_noun="width chain",
            answer_scope="every layer", format=("Widths joined by '-'.",),
            elements_title="Widths", elements_intro="Use only these widths:",
            elements=tuple((str(w), f"a layer of {w} channels") for w in WIDTHS),
            iteration_rule="The random mutation changes one layer's width.",
            example=WorkedExample(parent="8-16", answer="8-24", change="widens layer 1",
                                  rationale="One change at a time."),
        )


class _Mutator:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def mutate(self, arch, num_replaces=1):
        index = self.rng.randrange(len(arch))
        width = self.rng.choice([w for w in WIDTHS if w != arch[index]])
        return arch[:index] + (width,) + arch[index + 1:]


def _network(arch, num_classes):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers, previous = [], 3
            for width in arch:
                layers += [nn.Conv2d(previous, width, 3, padding=1, bias=False),
                           nn.BatchNorm2d(width), nn.ReLU()]
                previous = width
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(previous, num_classes)

        def forward_pre_gap(self, x):
            return self.body(x)

        def forward(self, x):
            return self.head(torch.flatten(self.body(x).mean(dim=(2, 3)), 1))

    return Net()


TOY = Chain()
'''


def install_toy_space(site: Path) -> Path:
    """The toy space as a distribution, installed as pip would: module plus dist-info."""
    (site / "nasagent_toyspace").mkdir(parents=True)
    (site / "nasagent_toyspace" / "__init__.py").write_text(textwrap.dedent(TOY_MODULE))
    info = site / "nasagent_toyspace-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nasagent-toyspace\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[nasagent.search_spaces]\ntoy = nasagent_toyspace:TOY\n"
    )
    return site


def nasagent(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "nasagent.agent", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_a_third_space_from_a_plugin_is_searched_and_compared(tmp_path: Path) -> None:
    site = install_toy_space(tmp_path / "site")
    listed = nasagent(site, tmp_path, "plugins")
    assert listed.returncode == 0 and "toy" in listed.stdout, listed.stderr
    common = ["--search-space", "toy", "--iterations", "4", "--proxy", "gradnorm",
              "--batch-size", "4", "--no-progress"]
    search = nasagent(site, tmp_path, "search", "--llm", "scripted", "--out",
                      str(tmp_path / "run"), *common)
    assert search.returncode == 0, search.stderr
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").open()]
    assert len({e["arch"] for e in events if e["outcome"] == "ok"}) >= 2
    assert all(set(e["arch"]) <= set("0123456789-") for e in events if e["arch"])
    compare = nasagent(site, tmp_path, "compare", "--llm", "scripted", "--arms", "llm,random",
                       "--seeds", "2", "--out", str(tmp_path / "cmp"), *common)
    assert compare.returncode == 0, compare.stderr
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert summary["header"]["search_space"] == "toy" and summary["truth"] is None
    assert [len(arm["counted_seeds"]) for arm in summary["arms"].values()] == [2, 2]
    prompt = nasagent(site, tmp_path, "prompt", "8-16", "--search-space", "toy")
    assert prompt.returncode == 0 and "## 24" in prompt.stdout and "width chain" in prompt.stdout


def test_a_space_refuses_the_options_it_cannot_honour() -> None:
    from nasagent.agent.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="counting 'zennas' is a Zen-NAS option"):
        config_from_dict({"search_space": "nb201-cifar10", "counting": "zennas"})
    with pytest.raises(ConfigError, match="no layers to budget"):
        config_from_dict({"search_space": "nb201-cifar10", "max_layers": 5})
    with pytest.raises(ConfigError, match="op_names 'neutral' is not offered"):
        config_from_dict({"op_names": "neutral"})
    with pytest.raises(ConfigError, match="zennas-cifar has none"):
        config_from_dict({"fitness": "benchmark"})
    settings = PromptSettings(constraints=Constraints(search_space="nb201-cifar10"),
                              op_names="neutral")
    assert "op_a" in mutation_messages(get_space("nb201-cifar10").defaults.seed_arch, None,
                                       settings)[0]["content"]
