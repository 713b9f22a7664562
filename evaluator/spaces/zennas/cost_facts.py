"""The cost model as the LLM reads it: layouts, shortcut rules and per-block formulas.

Everything here is text generated from one symbolic description of each family's residual
units, rendered with the primitive rules of the counting convention in force. It states what
`evaluator.cost.count_cost` computes (tests/test_cost_facts.py evaluates every formula against
`count_cost` on random architectures), so the prompt cannot drift from the validator.

Formulas use these names: C_in, C_out, B (bottleneck_channels), n (sub_layers), k (the kernel
in the block's name), E (the expansion in an IDW block's name), s (stride), R (the block's input
resolution), r (its output resolution), D1 = E*B and D2 = E*C_out (the IDW expanded widths),
C (the last block's out_channels) and num_classes; `^` is a power, `//` integer division, and a
comparison such as (B != C_out) counts 1 when true and 0 when false.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nasagent.evaluator.spaces.zennas.cost import Counting, downsample
from nasagent.evaluator.spaces.zennas.ops import Family, OpSpec


@dataclass(frozen=True)
class _Conv:
    """One conv (+ BatchNorm) of a unit; channel names are formula symbols."""

    cin: str
    cout: str
    kernel: bool = False  # k x k; False: 1x1
    depthwise: bool = False
    strided: bool = False  # carries the block's stride
    pre: bool = False  # runs at the block's input resolution R, before the strided conv


@dataclass(frozen=True)
class _Shortcut:
    cin: str
    cout: str
    always: bool  # a projection even when the shapes match (the first unit of a block)
    strided: bool = False


@dataclass(frozen=True)
class _Unit:
    convs: tuple[_Conv, ...]
    shortcut: _Shortcut | None  # None: no residual link (SuperConv)


def _bottleneck_unit(cin: str, first: bool) -> _Unit:
    convs = (
        _Conv(cin, "B", pre=first), _Conv("B", "B", kernel=True, strided=first),
        _Conv("B", "C_out"),
    )
    return _Unit(convs, _Shortcut(cin, "C_out", always=first, strided=first))


def _idw_unit(cin: str, wide: str, cout: str, first: bool) -> _Unit:
    convs = (
        _Conv(cin, wide, pre=first), _Conv(wide, wide, kernel=True, depthwise=True, strided=first),
        _Conv(wide, cout),
    )
    return _Unit(convs, _Shortcut(cin, cout, always=first, strided=first))


_LAYOUTS: dict[Family, tuple[tuple[_Unit, ...], tuple[_Unit, ...]]] = {
    Family.CONV: (
        (_Unit((_Conv("C_in", "C_out", kernel=True, strided=True),), None),),
        (_Unit((_Conv("C_out", "C_out", kernel=True),), None),),
    ),
    Family.KXKX: (
        (_Unit((_Conv("C_in", "B", kernel=True, strided=True), _Conv("B", "C_out", kernel=True)),
               _Shortcut("C_in", "C_out", always=True, strided=True)),),
        (_Unit((_Conv("C_out", "B", kernel=True), _Conv("B", "C_out", kernel=True)),
               _Shortcut("C_out", "C_out", always=False)),),
    ),
    Family.K1KXK1: (
        (_bottleneck_unit("C_in", first=True), _bottleneck_unit("C_out", first=False)),
        (_bottleneck_unit("C_out", first=False), _bottleneck_unit("C_out", first=False)),
    ),
    Family.IDW: (
        (_idw_unit("C_in", "D1", "B", first=True), _idw_unit("B", "D2", "C_out", first=False)),
        (_idw_unit("C_out", "D1", "B", first=False), _idw_unit("B", "D2", "C_out", first=False)),
    ),
}
"""(first sub-layer, every later sub-layer) of each family, as `evaluator.cost` expands them."""


_Term = tuple[str, str, int]
"""(monomial, position factor or "" for none, count): count x monomial x factor."""

_Terms = tuple[list[_Term], list[_Term]]
"""(parameter terms, FLOP terms) of one primitive."""


class _Text(Protocol):
    """The primitive formulas of one counting convention, as terms."""

    def conv(self, conv: _Conv) -> _Terms: ...

    def bn(self, conv: _Conv) -> _Terms: ...

    def projection(self, shortcut: _Shortcut) -> _Terms: ...

    def head(self) -> tuple[str, str]: ...


_ORDER = ("C_in", "C_out", "B", "D1", "D2")


def _product(a: str, c: str) -> str:
    """a*c with the names in one fixed order, so like terms meet: C_out*B, never B*C_out."""
    if a == c:
        return f"{a}^2"
    first, second = sorted((a, c), key=_ORDER.index)
    return f"{first}*{second}"


def _weights(conv: _Conv) -> str:
    if conv.depthwise:
        return f"k^2*{conv.cout}"
    channels = _product(conv.cin, conv.cout)
    return f"k^2*{channels}" if conv.kernel else channels


def _positions(conv: _Conv) -> str:
    return "R^2" if conv.pre else "r^2"


class _ExactText:
    def conv(self, conv: _Conv) -> _Terms:
        weights = _weights(conv)
        return [(weights, "", 1)], [(weights, _positions(conv), 1)]

    def bn(self, conv: _Conv) -> _Terms:
        return [(conv.cout, "", 2)], [(conv.cout, _positions(conv), 1)]

    def projection(self, shortcut: _Shortcut) -> _Terms:
        a, c = shortcut.cin, shortcut.cout
        return [(_product(a, c), "", 1), (c, "", 3)], [(_product(a, c), "r^2", 1), (c, "r^2", 1)]

    def head(self) -> tuple[str, str]:
        return "C*num_classes + num_classes", "C*num_classes"


class _ZenNasText:
    def conv(self, conv: _Conv) -> _Terms:
        weights = _weights(conv)
        if conv.strided:
            return [(weights, "", 1)], [(f"({weights}*R^2)//s^2", "", 1)]
        return [(weights, "", 1)], [(weights, _positions(conv), 1)]

    def bn(self, conv: _Conv) -> _Terms:
        return [(conv.cout, "", 1)], [(conv.cout, _positions(conv), 1)]

    def projection(self, shortcut: _Shortcut) -> _Terms:
        a, c = shortcut.cin, shortcut.cout
        positions = "(r/s)^2" if shortcut.strided else "r^2"
        return [(_product(a, c), "", 1), (c, "", 1)], [
            (_product(a, c), positions, 1), (c, positions, 1),
        ]

    def head(self) -> tuple[str, str]:
        return "C*num_classes + 1", "C*num_classes"


_TEXTS: dict[Counting, _Text] = {Counting.EXACT: _ExactText(), Counting.ZENNAS: _ZenNasText()}

_PRIMITIVES: dict[Counting, str] = {
    Counting.EXACT: (
        "a conv has k^2*in*out weights (depthwise: k^2*channels) and costs its weights times "
        "its output positions in FLOPs; each BatchNorm has 2 parameters per channel and 1 FLOP "
        "per output element; a projection shortcut (1x1 conv with bias, then BatchNorm) has "
        "in*out + 3*out parameters and (in*out + out)*r^2 FLOPs; the classifier has "
        "C*num_classes + num_classes parameters and C*num_classes FLOPs"
    ),
    Counting.ZENNAS: (
        "a conv has k^2*in*out weights (depthwise: k^2*channels) and costs "
        "(weights*R^2)//s^2 FLOPs at input resolution R; each BatchNorm has 1 parameter per "
        "channel and 1 FLOP per output element; a projection shortcut has in*out + out "
        "parameters and (in*out + out)*(r/s)^2 FLOPs (Zen-NAS divides by the stride once more); "
        "the classifier has C*num_classes + 1 parameters and C*num_classes FLOPs"
    ),
}


@dataclass(frozen=True)
class FamilyFacts:
    """One block family: its ops, its unit layout in words, and its cost formulas."""

    family: Family
    ops: tuple[str, ...]
    layout: str
    params: str
    flops: str


@dataclass(frozen=True)
class CostFacts:
    """What the prompt states about costs under one counting convention."""

    counting: Counting
    resolution_rule: str
    primitives: str
    families: tuple[FamilyFacts, ...]
    head_params: str
    head_flops: str


def _combine(terms: list[_Term]) -> str:
    """Like terms added up, grouped by their position factor: `r^2*(4*B + k^2*B^2)`."""
    groups: dict[str, dict[str, int]] = {}
    for monomial, factor, count in terms:
        group = groups.setdefault(factor, {})
        group[monomial] = group.get(monomial, 0) + count
    parts = []
    for factor, monomials in groups.items():
        inner = " + ".join(m if c == 1 else f"{c}*{m}" for m, c in monomials.items())
        if not factor:
            parts.append(inner)
        else:
            parts.append(f"{factor}*({inner})" if " + " in inner else f"{inner}*{factor}")
    return " + ".join(parts)


def _conditional(shortcut: _Shortcut, terms: list[_Term]) -> list[_Term]:
    """Terms that count only when the shortcut's two widths differ, as one indicator term."""
    by_factor: dict[str, list[_Term]] = {}
    for term in terms:
        by_factor.setdefault(term[1], []).append(term)
    test = f"({_product(shortcut.cin, shortcut.cout).replace('*', ' != ')})"
    return [
        (f"{test}*({_combine([(m, '', c) for m, _, c in group])})", factor, 1)
        for factor, group in by_factor.items()
    ]


def _sub_layer_terms(units: tuple[_Unit, ...], text: _Text) -> _Terms:
    params: list[_Term] = []
    flops: list[_Term] = []
    for unit in units:
        for conv in unit.convs:
            for p, f in (text.conv(conv), text.bn(conv)):
                params += p
                flops += f
        shortcut = unit.shortcut
        if shortcut is None or (not shortcut.always and shortcut.cin == shortcut.cout):
            continue
        p, f = text.projection(shortcut)
        if not shortcut.always:
            p, f = _conditional(shortcut, p), _conditional(shortcut, f)
        params += p
        flops += f
    return params, flops


def _block_formulas(family: Family, counting: Counting) -> tuple[str, str]:
    first, later = _LAYOUTS[family]
    text = _TEXTS[counting]
    (p1, f1), (p2, f2) = _sub_layer_terms(first, text), _sub_layer_terms(later, text)
    return (
        f"{_combine(p1)} + (n - 1)*({_combine(p2)})",
        f"{_combine(f1)} + (n - 1)*({_combine(f2)})",
    )


def _conv_words(conv: _Conv) -> str:
    size = "kxk" if conv.kernel else "1x1"
    kind = f"{size} depthwise conv on {conv.cout}" if conv.depthwise else (
        f"{size} conv {conv.cin}->{conv.cout}"
    )
    return kind + (" (stride s)" if conv.strided else "")


def _shortcut_words(shortcut: _Shortcut | None) -> str:
    if shortcut is None:
        return "no residual link"
    projection = f"a 1x1 projection {shortcut.cin}->{shortcut.cout}"
    if shortcut.always:
        stride = " with stride s" if shortcut.strided else ""
        return f"residual add through {projection}{stride} (always, even when shapes match)"
    if shortcut.cin == shortcut.cout:
        return "residual add through an identity shortcut"
    return (
        f"residual add through an identity shortcut when {shortcut.cin} = {shortcut.cout}, "
        f"else through {projection}"
    )


def _units_words(units: tuple[_Unit, ...]) -> str:
    parts = []
    for index, unit in enumerate(units, start=1):
        body = ", ".join(_conv_words(conv) for conv in unit.convs)
        label = f"unit {index}: " if len(units) > 1 else ""
        parts.append(f"{label}{body}; {_shortcut_words(unit.shortcut)}")
    return " | ".join(parts)


def layout_words(family: Family) -> str:
    """The family's units in words: the first sub-layer, then every later one."""
    first, later = _LAYOUTS[family]
    return f"first sub-layer: {_units_words(first)}. Each later sub-layer: {_units_words(later)}."


def resolution_rule(counting: Counting | str) -> str:
    """How a stride-2 block changes the resolution, with a worked odd-size example."""
    counting = Counting(counting)
    example = downsample(7, 2, counting)
    if counting is Counting.EXACT:
        how = "ceil(R/2): the convs are padded, so an odd size rounds up"
    else:
        how = "R // 2 (integer division, as Zen-NAS counts it)"
    return f"a stride-2 block maps an RxR input to {how}; 7x7 becomes {example}x{example}"


def resolution_chain(resolution: int, counting: Counting | str) -> list[int]:
    """The resolutions after 0, 1, 2, ... stride-2 blocks, down to 1 pixel."""
    chain = [resolution]
    while chain[-1] > 1:
        chain.append(downsample(chain[-1], 2, counting))
    return chain


def max_stride2_blocks(resolution: int, counting: Counting | str) -> int:
    """How many stride-2 blocks fit before the feature map is 1 pixel (the validator's limit)."""
    return len(resolution_chain(resolution, counting)) - 1


def cost_facts(counting: Counting | str, specs: list[OpSpec]) -> CostFacts:
    """The cost facts for the families of `specs`, in registry order, under `counting`."""
    counting = Counting(counting)
    families: list[FamilyFacts] = []
    for family in Family:
        ops = tuple(spec.name for spec in specs if spec.family is family)
        if ops:
            params, flops = _block_formulas(family, counting)
            families.append(FamilyFacts(family, ops, layout_words(family), params, flops))
    head_params, head_flops = _TEXTS[counting].head()
    return CostFacts(
        counting, resolution_rule(counting), _PRIMITIVES[counting], tuple(families),
        head_params, head_flops,
    )
