"""The NAS-Bench-201 torch network: shapes per dataset, NATS-Bench's module layout, none edges."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from nasagent.evaluator.spaces.nb201.builder import InferCell, build_network
from nasagent.evaluator.spaces.nb201.cell import Cell, parse

DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16-120": (120, 16)}
BEST_C10 = parse(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "nor_conv_1x1~2|"
)
POOLS_AND_NONE = parse(
    "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("cell", [BEST_C10, POOLS_AND_NONE], ids=["best-c10", "pools-none"])
def test_forward_and_backward_on_each_dataset_size(dataset: str, cell: Cell) -> None:
    num_classes, resolution = DATASETS[dataset]
    torch.manual_seed(0)
    model = build_network(cell, num_classes).train()
    images = torch.randn(4, 3, resolution, resolution)
    features = model.forward_pre_gap(images)
    assert features.shape == (4, 64, resolution // 4, resolution // 4)
    assert bool((features >= 0).all())  # after the final BN-ReLU
    logits = model(images)
    assert logits.shape == (4, num_classes)
    F.cross_entropy(logits, torch.arange(4) % num_classes).backward()
    assert model.stem[0].weight.grad is not None
    assert model.classifier.weight.grad is not None
    assert torch.isfinite(model.stem[0].weight.grad).all()


def test_logits_are_the_classifier_of_the_pooled_pre_gap_features() -> None:
    model = build_network(BEST_C10, 10).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        pooled = model.forward_pre_gap(images).mean(dim=(2, 3))
        assert torch.allclose(model(images), model.classifier(pooled), atol=1e-6)


def test_the_modules_carry_nats_bench_names_in_creation_order() -> None:
    model = build_network(BEST_C10, 10)
    names = list(model.state_dict())
    # NATS-Bench's TinyNetwork keys: loading one of its checkpoints needs these exact names.
    assert names[:2] == ["stem.0.weight", "stem.1.weight"]
    assert "cells.0.layers.0.op.1.weight" in names  # edge 0 of cell 0: ReLU(0), conv(1), BN(2)
    assert "cells.0.layers.3.op.1.weight" not in names  # edge 3 is a skip_connect
    assert "cells.5.conv_a.op.1.weight" in names and "cells.5.downsample.1.weight" in names
    assert "cells.11.conv_b.op.2.running_var" in names
    assert names[-3:] == ["lastact.0.num_batches_tracked", "classifier.weight", "classifier.bias"]
    assert len(model.cells) == 17


def test_a_seeded_default_initialisation_is_reproducible() -> None:
    torch.manual_seed(5)
    first = build_network(BEST_C10, 10).state_dict()
    torch.manual_seed(5)
    second = build_network(BEST_C10, 10).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_none_edges_contribute_zeros() -> None:
    only_skip_to_output = Cell(("none", "none", "none", "skip_connect", "none", "none"))
    cell = InferCell(only_skip_to_output, 8)
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(cell(x), x)
    assert torch.equal(InferCell(Cell(("none",) * 6), 8)(x), torch.zeros_like(x))


def test_only_the_builder_imports_torch() -> None:
    modules = ("cell", "cost", "mutation", "bench")
    code = "; ".join(f"import nasagent.evaluator.spaces.nb201.{name}" for name in modules)
    code += "; import sys; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
