"""The example architectures in fixtures/ read through the CLI, comments included."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from nasagent.agent.cli.app import app

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "architectures"


def inspect_file(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["inspect", *args, "--counting", "zennas", "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_cifar_references_match_the_released_sizes() -> None:
    records = inspect_file("--file", str(FIXTURES / "zennas-reference.txt"), "--num-classes", "10",
                           "--max-params", "0", "--max-layers", "none")  # the 2M one is > 1e6
    # zennas-semantics section 4: the ZenNet sizes with 10 classes (0.5M, 1M, 2M).
    assert [r["params"] for r in records] == [90_201, 494_217, 985_105, 1_969_001]


def test_imagenet_references_match_the_released_flops() -> None:
    # zennas-imagenet's own defaults: 224x224, 1000 classes, 400M FLOPs, 14 layers; both fit
    # them under Zen-NAS counting.
    records = inspect_file(
        "--file", str(FIXTURES / "zennas-imagenet.txt"), "--search-space", "zennas-imagenet",
    )
    assert [r["flops"] for r in records] == [162_396_776, 399_976_216]
    assert records[1]["layers"] == 14


def test_nb201_cells_match_the_published_sizes() -> None:
    # NATS-Bench's CIFAR-10 sizes: the seed (index 0), all-3x3 (the largest, 1.531546 MB,
    # 220.11 MFLOPs) and the best cell (index 6111).
    records = [json.loads(line) for line in CliRunner().invoke(app, [
        "inspect", "--file", str(FIXTURES / "nb201-cells.txt"), "--search-space",
        "nb201-cifar10", "--json",
    ]).output.splitlines()]
    assert [r["valid"] for r in records] == [True, True, True]
    assert [r["params"] for r in records][1] == 1_531_546
    assert [r["flops"] for r in records][1] == 220_119_690
    assert all(r["layers"] is None for r in records)
