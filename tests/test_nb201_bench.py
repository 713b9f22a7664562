"""The packaged NAS-Bench-201 table: look-ups, the best cells, and the tool that builds it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nasagent.evaluator.errors import UnknownNameError
from nasagent.evaluator.spaces.nb201 import bench
from nasagent.evaluator.spaces.nb201.cell import parse

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "build_nb201_table.py"
PACKAGED = ROOT / "evaluator" / "spaces" / "nb201" / "data" / bench.TABLE_FILE
SHARED = ROOT.parent / "shared" / "data" / "nb201"
needs_sources = pytest.mark.skipif(
    not (SHARED / "nats_tss_test_accuracy_200ep_mean.csv").exists(),
    reason="the NATS-Bench CSVs of shared/data/nb201 are not beside the repository",
)

BEST = {
    "cifar10": ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                "nor_conv_3x3~1|nor_conv_1x1~2|", 6111, 94.373),
    "cifar100": ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                 "nor_conv_3x3~1|nor_conv_3x3~2|", 9930, 73.513),
    "imagenet16-120": ("|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|"
                       "nor_conv_3x3~1|nor_conv_3x3~2|", 857, 47.311),
}


@pytest.mark.parametrize("dataset", bench.DATASETS)
def test_the_best_cell_of_each_dataset_and_its_accuracy(dataset: str) -> None:
    text, index, accuracy = BEST[dataset]
    record = bench.best(dataset)
    assert (str(record.cell), record.nats_index, record.dataset) == (text, index, dataset)
    assert round(record.test_accuracy, 3) == accuracy
    assert max(r.test_accuracy for r in bench.records(dataset)) == record.test_accuracy


def test_a_lookup_gives_the_index_and_both_accuracies() -> None:
    record = bench.lookup(parse(BEST["cifar10"][0]), "cifar10")
    assert (record.nats_index, record.test_accuracy, record.test_accuracy_12ep) == (
        6111, 94.373333, 88.79
    )
    first = parse("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|"
                  "skip_connect~1|skip_connect~2|")
    record = bench.lookup(first, "imagenet16-120")
    assert (record.nats_index, record.test_accuracy, record.test_accuracy_12ep) == (
        0, 26.633333, 17.0
    )


def test_the_records_list_every_cell_once_in_nats_order() -> None:
    records = bench.records("cifar100")
    assert [r.nats_index for r in records] == list(range(15_625))
    assert len({r.cell for r in records}) == 15_625
    assert all(0.0 <= r.test_accuracy <= 100.0 for r in records)


def test_an_unknown_dataset_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="cifar10, cifar100, imagenet16-120"):
        bench.lookup(parse(BEST["cifar10"][0]), "ImageNet16-120")
    with pytest.raises(UnknownNameError):
        bench.best("cifar10-valid")


def test_the_source_is_cited() -> None:
    assert "NATS-Bench" in bench.SOURCE and "TPAMI 2021" in bench.SOURCE
    assert "NAS-Bench-201" in bench.SOURCE and "v-tao/nats-bench-landscape" in bench.SOURCE
    assert "v-tao/nats-bench-landscape" in (PACKAGED.parent / "README.md").read_text()


@needs_sources
def test_the_tool_rebuilds_the_packaged_table_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "table.csv.gz"
    result = subprocess.run([sys.executable, str(TOOL), "--source", str(SHARED), "--out",
                             str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == PACKAGED.read_bytes()
    assert out.stat().st_size < 500_000


@needs_sources
def test_the_tool_refuses_inputs_that_disagree(tmp_path: Path) -> None:
    for name in ("nats_tss_test_accuracy_200ep_mean.csv",
                 "nats_tss_test_accuracy_12ep_200ep_one_run.csv"):
        (tmp_path / name).write_text((SHARED / name).read_text())
    mean = tmp_path / "nats_tss_test_accuracy_200ep_mean.csv"
    lines = mean.read_text().splitlines()
    lines[10] = lines[10].replace("~0|", "~1|", 1)
    mean.write_text("\n".join(lines) + "\n")
    out = tmp_path / "table.csv.gz"
    result = subprocess.run([sys.executable, str(TOOL), "--source", str(tmp_path), "--out",
                             str(out)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: row 9: the two files list different cells"
    assert not out.exists()


def test_the_tool_says_which_input_it_cannot_read(tmp_path: Path) -> None:
    out = tmp_path / "table.csv.gz"
    result = subprocess.run([sys.executable, str(TOOL), "--source", str(tmp_path), "--out",
                             str(out)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read ")
    assert "nats_tss_test_accuracy_200ep_mean.csv" in result.stderr
    assert not out.exists()
