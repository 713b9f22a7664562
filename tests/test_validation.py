"""The validator: every rule with its message, all violations at once, budgets, syntax errors."""

from __future__ import annotations

import json
import sys

import pytest
from pydantic import ValidationError

from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED, parse
from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block
from nasagent.evaluator.spaces.zennas.cost import Cost, Counting
from nasagent.evaluator.validation import (
    Constraints,
    Report,
    Violation,
    ViolationKind,
    check,
    check_string,
)

CIFAR = Constraints()
HUGE = "SuperConvK3BNRELU(3,2048,1,1)SuperResK3K3(2048,2048,1,2048,600)"


def _only(report: Report) -> Violation:
    assert len(report.errors) == 1, report.error_lines()
    return report.errors[0]


def test_seed_is_valid_with_its_cost_and_canonical_form() -> None:
    report = check_string(CIFAR_SEED, CIFAR)
    assert report.valid and report.errors == [] and not report.over_budget
    assert report.canonical == CIFAR_SEED and report.input == CIFAR_SEED
    assert report.cost == Cost(102_572, 6_806_528, 6)
    assert report.architecture == parse(CIFAR_SEED)


def test_counting_follows_the_constraints() -> None:
    report = check_string(CIFAR_SEED, Constraints(counting=Counting.ZENNAS))
    assert report.cost == Cost(101_721.0, 6_550_784.0, 6)


def test_imagenet_seed_is_valid_in_the_imagenet_space() -> None:
    constraints = Constraints(search_space="zennas-imagenet", num_classes=1000, resolution=224)
    assert check_string(IMAGENET_SEED, constraints).valid


def test_op_outside_the_search_space_lists_the_space_ops() -> None:
    # Every IDW block is reported; look at the first one.
    report = check_string(IMAGENET_SEED, CIFAR)
    assert [e.block for e in report.errors] == [1, 2, 3, 4]
    error = report.errors[0]
    assert (error.kind, error.field) == (ViolationKind.OP, "op")
    assert error.message.startswith(
        "block 1 SuperResIDWE6K3: SuperResIDWE6K3 is not in search space zennas-cifar; use one of "
    )
    assert "SuperResK1K7K1" in error.message and "SuperResIDWE1K3" not in error.message


def test_unregistered_op_in_a_hand_built_architecture() -> None:
    arch = Architecture(blocks=(
        Block(op="Mystery", in_channels=3, out_channels=8, stride=1, sub_layers=1),
    ))
    report = check(arch, CIFAR)
    assert _only(report).message.startswith("block 0 Mystery: Mystery is not registered; use one")
    assert report.cost is None


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,20,1,8,1)SuperConvK1BNRELU(20,32,1,1)",
         "out_channels", "block 1 SuperResK3K3: out_channels 20 is not a multiple of 8; "
         "use 16 or 24"),
        ("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,12,1)",
         "bottleneck_channels", "block 1 SuperResK3K3: bottleneck_channels 12 is not a multiple "
         "of 8; use 8 or 16"),
        ("SuperConvK3BNRELU(3,0,1,1)SuperResK3K3(0,8,1,8,1)",
         "out_channels", "block 0 SuperConvK3BNRELU: out_channels 0 must be positive and a "
         "multiple of 8; use 8"),
        ("SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,1,4,1)",
         "bottleneck_channels", "block 1 SuperResK1K3K1: bottleneck_channels 4 must be positive "
         "and a multiple of 8; use 8"),
        ("SuperConvK3BNRELU(3,4096,1,1)",
         "out_channels", "block 0 SuperConvK3BNRELU: out_channels 4096 exceeds the maximum of "
         "2048; use 2048 or less"),
    ],
)
def test_channel_rules(text: str, field: str, message: str) -> None:
    error = _only(check_string(text, CIFAR))
    assert (error.kind, error.field, error.message) == (ViolationKind.CHANNELS, field, message)


def test_bottleneck_presence_must_match_the_op() -> None:
    arch = Architecture(blocks=(
        Block(op="SuperConvK3BNRELU", in_channels=3, out_channels=8, stride=1,
              bottleneck_channels=8, sub_layers=1),
        Block(op="SuperResK3K3", in_channels=8, out_channels=8, stride=1, sub_layers=1),
    ))
    report = check(arch, CIFAR)
    assert [(e.block, e.field, e.kind) for e in report.errors] == [
        (0, "bottleneck_channels", ViolationKind.CHANNELS),
        (1, "bottleneck_channels", ViolationKind.CHANNELS),
    ]
    assert "is not taken by this op; write SuperConvK3BNRELU(" in report.errors[0].message
    assert "is missing; write SuperResK3K3(in_channels, out_channels, stride, " \
        "bottleneck_channels, sub_layers)" in report.errors[1].message
    assert report.cost is None


def test_first_block_must_take_rgb() -> None:
    error = _only(check_string("SuperConvK3BNRELU(8,8,1,1)", CIFAR))
    assert (error.kind, error.field, error.block) == (ViolationKind.CHAIN, "in_channels", 0)
    assert error.message == (
        "block 0 SuperConvK3BNRELU: in_channels 8 must equal the RGB input's channels 3"
    )


def test_channels_must_chain() -> None:
    text = CIFAR_SEED.replace("SuperResK3K3(64,64,2,32,1)", "SuperResK3K3(32,64,2,32,1)")
    error = _only(check_string(text, CIFAR))
    assert (error.kind, error.block) == (ViolationKind.CHAIN, 4)
    assert error.message == (
        "block 4 SuperResK3K3: in_channels 32 must equal block 3's out_channels 64"
    )


@pytest.mark.parametrize("stride", [0, 3])
def test_stride_must_be_one_or_two(stride: int) -> None:
    error = _only(check_string(f"SuperConvK3BNRELU(3,8,{stride},1)", CIFAR))
    assert (error.kind, error.field) == (ViolationKind.STRIDE, "stride")
    assert error.message == f"block 0 SuperConvK3BNRELU: stride {stride} must be 1 or 2"


def test_sub_layers_must_be_positive() -> None:
    error = _only(check_string("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,0)", CIFAR))
    assert (error.kind, error.field, error.block) == (ViolationKind.SUB_LAYERS, "sub_layers", 1)
    assert error.message == "block 1 SuperResK3K3: sub_layers 0 must be at least 1"


def test_resolution_must_stay_at_least_one_pixel() -> None:
    text = "SuperConvK3BNRELU(3,8,2,1)" + "SuperResK3K3(8,8,2,8,1)" * 6
    error = _only(check_string(text, CIFAR))
    assert (error.kind, error.field, error.block) == (ViolationKind.RESOLUTION, "stride", 5)
    assert error.message == (
        "block 5 SuperResK3K3: stride 2 cannot halve the 1x1 feature map (input resolution 32 "
        "allows at most 5 stride-2 blocks under exact counting); use stride 1"
    )
    assert check_string(text, Constraints(resolution=128)).valid


def test_resolution_limit_follows_the_counting_convention() -> None:
    # 224 -> ... -> 7 -> 4 -> 2 -> 1 (exact, padded convs) but 7 -> 3 -> 1 (zennas, R // 2)
    eight = "SuperConvK3BNRELU(3,8,2,1)" + "SuperResK3K3(8,8,2,8,1)" * 7
    assert check_string(eight, Constraints(resolution=224, counting="exact")).valid
    error = _only(check_string(eight, Constraints(resolution=224, counting="zennas")))
    assert (error.kind, error.block) == (ViolationKind.RESOLUTION, 7)
    assert "at most 7 stride-2 blocks under zennas counting" in error.message


def test_budget_messages_and_over_budget() -> None:
    constraints = Constraints(max_params=1e5, max_flops=6e6, max_layers=5)
    report = check_string(CIFAR_SEED, constraints)
    assert report.over_budget and not report.valid
    assert [(e.block, e.field, e.kind) for e in report.errors] == [
        (None, "params", ViolationKind.BUDGET),
        (None, "flops", ViolationKind.BUDGET),
        (None, "layers", ViolationKind.BUDGET),
    ]
    assert report.error_lines() == [
        "params 102,572 exceed the budget of 100,000; shrink channels or sub-layers",
        "FLOPs 6,806,528 at resolution 32 exceed the budget of 6,000,000; shrink channels or "
        "sub-layers, or downsample earlier",
        "layers 6 (the sum of sub_layers) exceed the budget of 5; remove sub-layers or blocks",
    ]


def test_budgets_are_inclusive_and_use_the_chosen_counting() -> None:
    exact_limit = Constraints(max_params=102_572, max_flops=6_806_528, max_layers=6)
    assert check_string(CIFAR_SEED, exact_limit).valid
    zennas = Constraints(counting="zennas", max_params=101_721, max_flops=6_550_784)
    assert check_string(CIFAR_SEED, zennas).valid
    assert not check_string(CIFAR_SEED, Constraints(max_params=101_721)).valid


def test_fractional_zennas_flops_are_printed_with_decimals() -> None:
    # The projection 8->3 counts (7/2)^2 * 3 * (8 + 1) = 330.75 FLOPs. (With channels that are
    # multiples of 8 the quarters cancel, so only an otherwise invalid block shows this.)
    text = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,3,2,8,1)"
    report = check_string(text, Constraints(counting="zennas", resolution=15, max_flops=1000))
    assert report.cost is not None
    assert not float(report.cost.flops).is_integer()
    assert f"FLOPs {report.cost.flops:,.2f} at resolution 15" in report.errors[-1].message


def test_all_violations_are_reported_at_once() -> None:
    text = (
        "SuperConvK3BNRELU(4,8,3,1)SuperResK3K3(16,20,1,12,0)"
        "SuperResIDWE6K3(20,3000,2,16,1)SuperConvK1BNRELU(3000,512,1,1)"
    )
    report = check_string(text, Constraints(max_params=1e6, max_layers=2))
    kinds = [(e.block, e.kind) for e in report.errors]
    assert kinds == [
        (0, ViolationKind.CHAIN),
        (0, ViolationKind.STRIDE),
        (1, ViolationKind.CHANNELS),
        (1, ViolationKind.CHANNELS),
        (1, ViolationKind.CHAIN),
        (1, ViolationKind.SUB_LAYERS),
        (2, ViolationKind.OP),
        (2, ViolationKind.CHANNELS),
        (None, ViolationKind.BUDGET),
        (None, ViolationKind.BUDGET),
    ]
    assert not report.over_budget
    assert len(report.error_lines()) == len(report.errors)
    assert all(line.startswith(f"block {e.block} ") for e, line in
               zip(report.errors[:8], report.error_lines(), strict=False))


def test_huge_architecture_is_refused_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    if "torch" in sys.modules:  # another test imported torch: make any module build fail loudly
        def refuse(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("the validator must not build torch modules")

        monkeypatch.setattr(sys.modules["torch"].nn.Module, "__init__", refuse)
    report = check_string(HUGE, Constraints(max_params=1e6, max_flops=1e9, max_layers=18))
    assert report.over_budget
    assert [e.field for e in report.errors] == ["params", "flops", "layers"]
    assert report.cost is not None and report.cost.layers == 601


def test_decode_errors_become_one_syntax_violation() -> None:
    report = check_string("SuperConvK3BNRELU(3,8,1,1)SuperFoo(8,8,1,1)", CIFAR)
    error = _only(report)
    assert (error.kind, error.field, error.block) == (ViolationKind.SYNTAX, "syntax", 1)
    assert error.message.startswith("unknown block 'SuperFoo'; valid names: ")
    assert "at character 26 (block 1)" in error.message
    assert report.canonical is None and report.architecture is None and report.cost is None
    assert not report.valid and not report.over_budget


@pytest.mark.parametrize("text", ["", "```json\n{}\n```", "(" * 70_000, "SuperResK3K3(8"])
def test_check_string_never_raises(text: str) -> None:
    report = check_string(text, CIFAR)
    assert not report.valid and _only(report).kind is ViolationKind.SYNTAX


def test_notes_are_carried_into_the_report() -> None:
    report = check_string("ConvK3BNRELU(3,8,1,1) ResK3K3(8,16,1,8)", CIFAR)
    assert report.valid
    assert report.canonical == "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)"
    assert report.input == "ConvK3BNRELU(3,8,1,1) ResK3K3(8,16,1,8)"
    assert len(report.notes) == 4


def test_check_defaults_input_to_the_canonical_string() -> None:
    report = check(parse(CIFAR_SEED), CIFAR, notes=["hello"])
    assert report.input == CIFAR_SEED and report.notes == ["hello"]


def test_report_serialises_to_json() -> None:
    report = check_string(CIFAR_SEED, CIFAR)
    restored = Report.model_validate({**json.loads(report.model_dump_json()),
                                      "architecture": None})
    assert restored.model_dump() == report.model_dump() and restored.canonical == CIFAR_SEED


@pytest.mark.parametrize(
    "values",
    [
        {"search_space": "nope"},
        {"num_classes": 0},
        {"resolution": 0},
        {"counting": "approximate"},
        {"max_params": 0},
        {"unknown_key": 1},
    ],
)
def test_constraints_reject_bad_values(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Constraints.model_validate(values)


def test_unknown_search_space_lists_the_names() -> None:
    names = "all, nb201-cifar10, nb201-cifar100, nb201-imagenet16, zennas-cifar, zennas-imagenet"
    with pytest.raises(ValidationError, match=f"valid: {names}"):
        Constraints(search_space="imagenet")
