"""The one interface a search space gives the rest of nasagent.

The loop, the prompts, compare, the report, the service and the CLI know a search space only
through `SearchSpace`: they pass canonical architecture strings around and ask the space to
decode, check, cost, mutate, build and describe them. An architecture object is the space's
own business (a Zen-NAS `Architecture`, an NB201 `Cell`, ...): generic code never looks
inside one. Each space is one package of `evaluator/spaces/` (or a plugin's), registered in
`evaluator.spaces.SEARCH_SPACES`.

What a space provides:

* identity and task: `name`, `description`, `defaults` (seed, resolution, classes, budgets);
* codec: `decode` (located errors, never eval), `encode` (the canonical string, which is the
  key of caches, events and replays), `looks_like` (lenient reply reading), optional namings
  of its elements (`namings`, for contamination control);
* rules: `option_problems` (which shared options it cannot honour), `violations` (every
  broken structural rule at once, each a sentence a model can act on), `cost` (analytic
  `Cost`, no torch) and the `metrics` a budget can limit;
* search: `mutator` (seeded, never the global RNG), `initial_member`, `random_arch`;
* torch: `proxy_protocol` (how each proxy is computed on this space, as its literature
  does: initialisation, inputs, definition, direction), `scoring_model` (built and
  initialised as that protocol says), `train_model` and `scoring_cost`, each importing torch
  lazily;
* prompts: `prompt_facts` (strings and lists only, rendered by the generic templates) and
  `reply_format`;
* ground truth: `benchmark`, a torch-free table of trained accuracies, or None.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import nn

    from nasagent.evaluator.proxies import ScoreSettings
    from nasagent.evaluator.validation import Constraints, Violation

STANDARD_NAMING = "standard"

GAUSSIAN = "gaussian"
"""Protocol value: N(0, 1) weights (init), or Gaussian images with random labels (data)."""
DEFAULT_INIT = "default"
"""Protocol value: PyTorch's default initialisation of every module."""
REAL_DATA = "real"
"""Protocol value: a run's proxy data (real training images and labels) when it gives one."""
ZENNAS_FORM = "zennas"
"""Protocol value: the proxy as Zen-NAS's code computes it."""
ZERO_COST_FORM = "zero-cost-nas"
"""Protocol value: the proxy as zero-cost-nas (Abdelfattah et al., ICLR 2021) computes it."""


@dataclass(frozen=True)
class Decoded:
    """A decoded architecture string and the notes on what the decoder normalised."""

    architecture: Any
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cost:
    """The cost of one architecture.

    Attributes:
        params: parameter count (an int; a float only under Zen-NAS's own counting).
        flops: multiply-accumulates per image at the task's resolution (same types).
        layers: the space's layer count where it has one (Zen-NAS: the sum of sub_layers).
    """

    params: int | float
    flops: int | float
    layers: int | None = None

    def value(self, metric: str) -> int | float | None:
        return getattr(self, metric, None)


def show_count(value: float) -> str:
    """1,203,112 for whole numbers, two decimals otherwise (Zen-NAS FLOPs can end in .25)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


@dataclass(frozen=True)
class Metric:
    """A cost a budget can limit (`max_<key>`), with the sentences that state and enforce it.

    Templates may use {value} and {limit} (formatted by `show`) and {resolution}.

    Attributes:
        key: the Cost attribute and the budget's suffix: params, flops or layers.
        label: how a cost line names it after the number ("params", "FLOPs", "layers").
        noun: the budget's kind in a sentence ("parameter", "FLOP", "layer").
        budget: the prompt's sentence for a budget in force ("at most {limit} parameters").
        over: the violation's sentence when the budget is broken.
        integer: the metric is a plain count (layers), written without separators.
    """

    key: str
    label: str
    noun: str
    budget: str
    over: str
    integer: bool = False

    def show(self, value: float) -> str:
        """How a violation writes a value or a limit of this metric."""
        return str(int(value)) if self.integer else show_count(value)


@dataclass(frozen=True)
class SpaceDefaults:
    """The task a space is searched for unless a flag says otherwise (None: no budget).

    Attributes:
        seed_arch: the search's starting architecture (canonical string).
        resolution: input height and width.
        num_classes: outputs of the classifier.
        max_params, max_flops, max_layers: the budgets in force by default.
        example_file: the fixtures/ file of example architectures (for error messages).
        prompt_version: the prompt version new runs in this space use.
        init_population: random members a new run starts with.
    """

    seed_arch: str
    resolution: int
    num_classes: int
    max_params: float | None = None
    max_flops: float | None = None
    max_layers: int | None = None
    example_file: str = ""
    prompt_version: int = 3
    init_population: int = 0


@dataclass(frozen=True)
class ProxyProtocol:
    """How one proxy is computed on a space: the protocol of the literature that judged it
    there. The proxies read it (`data`, `form`), the space's `scoring_model` honours it
    (`init`, `batchnorm`), and the search ranks by its direction.

    Attributes:
        init: `gaussian` (Zen-NAS: N(0, 1) conv and linear weights, BatchNorm 1 and 0) or
            `default` (PyTorch's initialisation, as zero-cost-nas and NASWOT score NB201).
        data: `gaussian` (Gaussian images, random labels) or `real` (the run's proxy data,
            a seeded minibatch of real training images and labels, when it gives one;
            Gaussian otherwise). Only proxies that read a batch (`ProxySpec.inputs`) read it:
            the Zen-score is defined on Gaussian inputs, SynFlow on an all-ones image.
        form: whose definition: `zennas` or `zero-cost-nas` (GradNorm and SynFlow differ).
        batchnorm: False: the scoring model bypasses its BatchNorm layers where the
            reference copies the network without them (zero-cost-nas's SynFlow).
        higher_is_better: the direction on this space, or None for the proxy's registered one.
        reference: the code or paper this protocol follows, for records and the README.
    """

    init: str = GAUSSIAN
    data: str = REAL_DATA
    form: str = ZENNAS_FORM
    batchnorm: bool = True
    higher_is_better: bool | None = None
    reference: str = "Zen-NAS (Lin et al., ICCV 2021), its released code"


ZENNAS_PROTOCOL = ProxyProtocol()
"""Zen-NAS's protocol: Gaussian initialisation, Zen-NAS's definitions and directions (SynFlow:
lower is better), Gaussian inputs with random labels unless a run gives real proxy data
(which Zen-NAS never does, so without it these are Zen-NAS's scores)."""


class Mutator(Protocol):
    """A seeded random mutation operator of one space."""

    def mutate(self, arch: Any, num_replaces: int = 1) -> Any: ...


@dataclass(frozen=True)
class WorkedExample:
    """The prompt's worked example: one good answer to one parent, in the space's notation."""

    parent: str
    answer: str
    change: str
    rationale: str
    parent_name: str = "an example architecture"


@dataclass(frozen=True)
class PromptFacts:
    """Everything the generic prompt (version 3 and later) says about a space: strings and
    lists only, generated from the code that checks the model's answer.

    Attributes:
        title: the space's name as the prompt shows it.
        description: one paragraph on the space.
        answer_noun: what an answer's "arch" is called ("block string", "cell string").
        answer_scope: what a complete answer holds ("all blocks, not only ...").
        format: paragraphs on how an architecture is written and what the network is.
        elements_title: the heading of the element list ("Blocks", "Operations").
        elements_intro: the sentence before the list (which names an answer may use).
        elements: (name, description) of every element an answer may use, in order.
        arguments: (name, meaning) of an element's arguments, if elements take any.
        rules: every construction rule the validator applies, one sentence each.
        structure: a structure in force: its heading and its rules, or None.
        budget_basis: how the budgets' costs are counted, in one phrase.
        cost_model: lines stating how costs are computed ("## " starts a sub-heading).
        iteration_rule: what one answer may change and what the random mutation it competes
            with changes.
        search_notes: further true statements about how this space is searched and scored.
        noise: per proxy, what its measured noise between near-identical networks is.
        example: the worked example.
    """

    title: str
    description: str
    answer_noun: str
    answer_scope: str
    format: tuple[str, ...]
    elements_title: str
    elements_intro: str
    elements: tuple[tuple[str, str], ...]
    iteration_rule: str
    example: WorkedExample
    arguments: tuple[tuple[str, str], ...] = ()
    rules: tuple[str, ...] = ()
    structure: tuple[str, tuple[str, ...]] | None = None
    budget_basis: str = ""
    cost_model: tuple[str, ...] = ()
    search_notes: tuple[str, ...] = ()
    noise: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplyFormat:
    """How a reply's answer is described to the model when it cannot be read."""

    answer_noun: str = "block string"
    example: str = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)"
    shape: str = "one string of blocks written back to back"


@dataclass(frozen=True)
class Accuracy:
    """A benchmark's trained accuracy of one architecture (percent), never shown to a model.

    Attributes:
        test_accuracy: the headline figure (e.g. NB201: 200 epochs, mean over seeds).
        short_accuracy: the short-training figure (NB201: 12 epochs, one run), if any.
        index: the architecture's index in the benchmark.
    """

    test_accuracy: float
    short_accuracy: float | None = None
    index: int | None = None


class Benchmark(Protocol):
    """A torch-free table of trained accuracies for every architecture of a space."""

    @property
    def source(self) -> str:
        """The citation of the table (paper and file)."""

    @property
    def dataset(self) -> str:
        """The data set the accuracies were measured on."""

    def lookup(self, canonical: str) -> Accuracy:
        """The accuracy of a canonical architecture string (KeyError: not in the table)."""

    def best(self) -> tuple[str, Accuracy]:
        """The table's best architecture by `test_accuracy`."""

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class MemoryEstimate:
    """What scoring or training one architecture needs, in bytes: an upper bound.

    Calibrated against the peak resident memory of real scorings and training steps
    (`python -m bench.memory_estimate`: GradNorm, Zen-score, SynFlow and NASWOT at batch 64,
    one SGD step at batch 128; 11 Zen-NAS and NB201 networks from 0.1 to 54 million
    parameters): the estimate was 2.1 to 3.1 times the GradNorm need, 1.3 to 2.2 times the
    training need (the least margin: the CIFAR seed), 1.55 times SynFlow's on a
    parameter-heavy network, never below a need. The need excludes torch itself (about 0.3 GB
    per process).

    Attributes:
        params: parameter count.
        activations: activation elements kept for backward per image (the space's count of
            every conv, BatchNorm and ReLU output, which exceeds what autograd saves).
        batch_size: images per batch.
    """

    params: int
    activations: int
    batch_size: int

    PARAM_BYTES = 16
    """Per parameter: weights and gradients in float64 (SynFlow scores in double precision),
    or weights, gradients and two optimiser states in float32 (training)."""
    ACTIVATION_BYTES = 4
    """Per counted activation element and image (float32). The count errs high enough to
    cover the gradients flowing back, which autograd frees layer by layer."""
    OVERHEAD = 1.5
    """Allocator slack and kernel workspaces on top of the counted tensors."""
    WORKSPACE = 128 * 2**20
    """Fixed: oneDNN scratch space and primitive caches, allocator arenas, the loss; measured
    about 50 MB for a scoring and 100 MB for a training step of the CIFAR seed."""

    @property
    def param_bytes(self) -> int:
        return int(self.params * self.PARAM_BYTES * self.OVERHEAD)

    @property
    def activation_bytes(self) -> int:
        return int(self.batch_size * self.activations * self.ACTIVATION_BYTES * self.OVERHEAD)

    @property
    def bytes(self) -> int:
        return self.param_bytes + self.activation_bytes + self.WORKSPACE


class SearchSpace(ABC):
    """A named search space (see the module docstring for what each part is for).

    Subclasses set `name`, `description`, `defaults` and `metrics` and implement the
    abstract methods; everything else has a sensible default.
    """

    name: str
    description: str
    defaults: SpaceDefaults
    metrics: tuple[Metric, ...]
    namings: tuple[str, ...] = (STANDARD_NAMING,)
    prompt_versions: tuple[int, ...] = (3,)
    benchmark_datasets: tuple[str, ...] = ()
    random_mutation: str = "random mutation"
    """What the space's random mutator is, as arm labels name it."""

    # ---- codec ------------------------------------------------------------------------------

    @abstractmethod
    def decode(self, text: str, naming: str = STANDARD_NAMING) -> Decoded:
        """Decode an architecture string (the notation of `naming`).

        Raises:
            BlockStringError: a subclass naming the problem and where it is.
        """

    @abstractmethod
    def encode(self, arch: Any, naming: str = STANDARD_NAMING) -> str:
        """The canonical string of `arch` (in `naming`): decode(encode(a)) == a."""

    def canonical(self, text: str) -> str:
        """Decode then encode: the canonical standard form of an architecture string."""
        return self.encode(self.decode(text).architecture)

    def rename(self, text: str, naming: str) -> str:
        """A canonical standard string written in `naming` (the prompt's notation)."""
        return text if naming == STANDARD_NAMING else self.encode(self.decode(text).architecture,
                                                                  naming)

    @abstractmethod
    def looks_like(self, line: str) -> bool:
        """Whether one line of a reply has the shape of an architecture string."""

    def reply_format(self, naming: str = STANDARD_NAMING) -> ReplyFormat:  # noqa: ARG002
        """How an answer is described when a reply cannot be read (in `naming`)."""
        return ReplyFormat()

    # ---- rules and cost ---------------------------------------------------------------------

    def option_problems(self, options: Mapping[str, Any]) -> list[str]:
        """Sentences on the shared options (counting, structure, type_weights, op_names,
        residual) this space cannot honour; the keys given are those set."""
        naming = options.get("op_names", STANDARD_NAMING)
        if naming not in self.namings:
            return [f"op_names {naming!r} is not offered by search space {self.name}; "
                    f"valid: {', '.join(self.namings)}"]
        return []

    @abstractmethod
    def violations(self, arch: Any, constraints: Constraints) -> list[Violation]:
        """Every broken rule of `arch` (budgets aside), each located and actionable."""

    @abstractmethod
    def cost(self, arch: Any, constraints: Constraints) -> Cost | None:
        """The analytic cost under the constraints' task, or None when `arch` has none."""

    def constrained_by_seed(self, constraints: Constraints, seed_arch: str  # noqa: ARG002
                            ) -> Constraints:
        """The constraints a run starting from `seed_arch` checks (a structure may keep what
        the seed fixes); by default unchanged."""
        return constraints

    @abstractmethod
    def memory(self, arch: Any, constraints: Constraints, batch_size: int) -> MemoryEstimate:
        """What scoring or training `arch` at `batch_size` needs, estimated without torch."""

    def metric(self, key: str) -> Metric | None:
        return next((metric for metric in self.metrics if metric.key == key), None)

    # ---- search -----------------------------------------------------------------------------

    @abstractmethod
    def mutator(self, seed: int, options: Mapping[str, Any]) -> Mutator:
        """The space's random mutation operator, seeded with `seed`."""

    def drawn_mutator(self, rng: random.Random, options: Mapping[str, Any]) -> Mutator:
        """A mutator seeded with the next draw of `rng`: how a proposal seeded `s`
        (`nasagent.mutate(seed=s)`, `nasagent mutate --seed s`, `POST /v1/mutate`) and every
        search's random proposal seed theirs, so one seed gives one child everywhere."""
        return self.mutator(rng.randrange(2**32), options)

    def initial_member(self, seed_arch: Any, rng: random.Random,
                       options: Mapping[str, Any]) -> Any:
        """One random member of a run's initial population: by default two mutations of
        the seed, drawn from `rng`."""
        return self.drawn_mutator(rng, options).mutate(seed_arch, num_replaces=2)

    def random_arch(self, rng: random.Random) -> Any | None:  # noqa: ARG002
        """An architecture drawn uniformly from the space, or None when it has no uniform
        sampler (an unbounded space)."""
        return None

    def broken(self, arch: Any, rng: random.Random) -> tuple[str, str]:  # noqa: ARG002
        """A deliberately invalid answer for the scripted stand-in: (text, note)."""
        text = self.encode(arch)
        return text[:-1], "(scripted stand-in: a deliberately broken answer, cut short)"

    # ---- torch ------------------------------------------------------------------------------

    def proxy_protocol(self, proxy: str) -> ProxyProtocol:  # noqa: ARG002
        """How `proxy` is computed on this space; by default Zen-NAS's protocol, under which
        nasagent's proxies were first written."""
        return ZENNAS_PROTOCOL

    @abstractmethod
    def scoring_model(self, arch: Any, settings: ScoreSettings) -> nn.Module:
        """The network the proxies score (with `forward_pre_gap`), built and initialised as
        `proxy_protocol(settings.proxy)` says, in train mode, on the CPU."""

    @abstractmethod
    def train_model(self, arch: Any, num_classes: int) -> nn.Module:
        """The network to train (default PyTorch initialisation from the global RNG)."""

    def scoring_cost(self, arch: Any, settings: ScoreSettings) -> Cost:
        """The cost the `params` and `flops` proxies report; by default the checked cost."""
        from nasagent.evaluator.validation import Constraints

        constraints = Constraints(search_space=self.name, num_classes=settings.num_classes,
                                  resolution=settings.resolution)
        cost = self.cost(arch, constraints)
        if cost is None:
            raise ValueError(f"{self.encode(arch)} has no cost in search space {self.name}")
        return cost

    # ---- prompts ----------------------------------------------------------------------------

    @abstractmethod
    def prompt_facts(self, constraints: Constraints, options: Mapping[str, Any]) -> PromptFacts:
        """What the generic prompt states about this space under the run's shared options
        (`op_names`: the notation every architecture is shown in)."""

    def structure_statements(self, constraints: Constraints) -> list[str]:  # noqa: ARG002
        """One sentence per structural rule in force (for reports); by default none."""
        return []

    def legacy_prompt_context(self, version: int, constraints: Constraints, proxy: str
                              ) -> dict[str, Any]:
        """The template context of a frozen, space-specific prompt version (Zen-NAS: 1, 2)."""
        raise NotImplementedError(f"search space {self.name} has no prompt version {version}")

    # ---- ground truth -----------------------------------------------------------------------

    def benchmark(self) -> Benchmark | None:
        """The table of trained accuracies of this space's task, or None."""
        return None


def spaces_holding(text: str, spaces: Sequence[SearchSpace]) -> list[str]:
    """The names of `spaces` that decode `text` and hold every element it uses (other rules
    and budgets aside): where an architecture belongs, for hints and defaults."""
    from nasagent.evaluator.validation import Constraints, ViolationKind

    holding = []
    for space in spaces:
        try:
            arch = space.decode(text).architecture
        except ValueError:
            continue
        constraints = Constraints(search_space=space.name)
        if all(error.kind is not ViolationKind.OP for error in space.violations(arch, constraints)):
            holding.append(space.name)
    return holding
