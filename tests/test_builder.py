"""The torch builder: every registered op builds, runs and matches the reference's structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED, OPS, parse
from nasagent.evaluator.spaces.zennas.builder import (
    BN_EPS,
    MasterNet,
    ModelBuildError,
    build_model,
    idw_widths,
)
from nasagent.evaluator.spaces.zennas.cost import Counting, count_cost
from nasagent.evaluator.spaces.zennas.mutation import RandomMutator
from nasagent.evaluator.spaces.zennas.ops import Family

NUM_CLASSES = 10


def small_arch_string(op: str) -> str:
    """Stem -> op (stride 2, two sub-layers) -> 1x1 head: covers sub-layer 0 and later ones."""
    if OPS[op].family is Family.CONV:
        middle = f"{op}(8,16,2,2)"
    else:
        middle = f"{op}(8,16,2,8,2)"
    return f"SuperConvK3BNRELU(3,8,1,1){middle}SuperConvK1BNRELU(16,24,1,1)"


def projections(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.bias is not None]


@pytest.mark.parametrize("residual", [True, False], ids=["residual", "no_reslink"])
@pytest.mark.parametrize("op", list(OPS))
def test_every_op_builds_and_runs_forward_and_backward(op: str, residual: bool) -> None:
    torch.manual_seed(0)
    model = build_model(parse(small_arch_string(op)), num_classes=NUM_CLASSES, residual=residual)
    logits = model(torch.randn(4, 3, 16, 16))
    logits.sum().backward()

    assert logits.shape == (4, NUM_CLASSES)
    assert torch.isfinite(logits).all()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("op", list(OPS))
def test_parameter_count_matches_the_exact_cost_model(op: str) -> None:
    arch = parse(small_arch_string(op))
    for residual in (True, False):
        model = build_model(arch, num_classes=NUM_CLASSES, residual=residual)
        numel = sum(p.numel() for p in model.parameters())
        cost = count_cost(
            arch, num_classes=NUM_CLASSES, counting=Counting.EXACT, residual=residual
        )
        assert numel == cost.params, f"residual={residual}"


def test_cifar_seed_numel_and_structure() -> None:
    model = build_model(parse(CIFAR_SEED), num_classes=100, residual=True)

    assert isinstance(model, MasterNet)
    assert sum(p.numel() for p in model.parameters()) == 102_572
    assert len(projections(model)) == 4  # one ResBlockProj per SuperResK3K3 block
    assert model.fc.in_features == 128 and model.fc.out_features == 100


def test_no_reslink_model_has_no_projections_and_fewer_parameters() -> None:
    model = build_model(parse(CIFAR_SEED), num_classes=100, residual=False)

    assert projections(model) == []
    assert sum(p.numel() for p in model.parameters()) < 102_572


def test_every_batch_norm_has_eps_1e_3_and_default_momentum() -> None:
    model = build_model(parse(small_arch_string("SuperResIDWE6K5")), residual=True)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]

    assert norms
    assert all(m.eps == BN_EPS == 1e-3 and m.momentum == 0.1 for m in norms)


def test_model_is_built_in_train_mode_and_keeps_the_pre_gap_features() -> None:
    model = build_model(parse(CIFAR_SEED), residual=False)
    features = model.forward_pre_gap(torch.randn(2, 3, 32, 32))

    assert model.training
    assert features.shape == (2, 128, 4, 4)


def test_idw_quirk_gives_every_resblock_a_projection_when_bottleneck_differs() -> None:
    # Unit A outputs the bottleneck width (24), unit B the block's (16): all four residual
    # units of two sub-layers need a 1x1 projection (section 3.4).
    arch = parse("SuperConvK3BNRELU(3,16,1,1)SuperResIDWE2K3(16,16,1,24,2)")
    model = build_model(arch, residual=True)

    assert len(projections(model)) == 4


def test_idw_expanded_widths_use_smart_round_with_base_8() -> None:
    block = parse("SuperResIDWE6K3(8,20,1,12,1)").blocks[0]

    assert idw_widths(block) == (72, 120)
    assert idw_widths(parse("SuperResIDWE1K3(8,20,1,20,1)").blocks[0]) == (16, 16)


def test_strides_sit_where_the_reference_puts_them() -> None:
    model = build_model(parse("SuperConvK3BNRELU(3,8,1,1)SuperResK1K5K1(8,16,2,8,1)"))
    strided = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]

    assert [(m.kernel_size, m.bias is not None) for m in strided] == [
        ((5, 5), False),  # the middle KxK conv of the first bottleneck unit
        ((1, 1), True),  # its projection shortcut
    ]


def test_channel_mismatch_is_a_build_error_naming_the_block() -> None:
    arch = parse("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(16,16,1,8,1)")

    with pytest.raises(ModelBuildError, match="block 1") as caught:
        build_model(arch)
    assert caught.value.block == 1


def test_zero_sized_fields_are_build_errors() -> None:
    with pytest.raises(ModelBuildError, match="sub_layers"):
        build_model(parse("SuperConvK3BNRELU(3,8,1,0)"))
    with pytest.raises(ModelBuildError, match="stride"):
        build_model(parse("SuperConvK3BNRELU(3,8,0,1)"))


@pytest.mark.parametrize(("space", "start"), [
    ("zennas-cifar", CIFAR_SEED),
    ("zennas-imagenet", IMAGENET_SEED),
    ("all", CIFAR_SEED),
])
def test_exact_params_equal_numel_over_mutated_architectures(space: str, start: str) -> None:
    """Chains of random mutations visit every family; exact counting must follow each one."""
    mutator = RandomMutator(space, seed=11)
    arch = parse(start)
    families = set()
    for _ in range(30):
        arch = mutator.mutate(arch, num_replaces=2)
        families |= {block.family for block in arch.blocks}
        numel = sum(p.numel() for p in build_model(arch, num_classes=100).parameters())
        assert numel == count_cost(arch, num_classes=100).params, str(arch)
    expected = {Family.CONV, Family.IDW} if space == "zennas-imagenet" else {
        Family.CONV, Family.KXKX, Family.K1KXK1}
    assert expected <= families
