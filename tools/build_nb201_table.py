"""Build the NAS-Bench-201 accuracy table shipped as package data.

Reads the two NATS-Bench tables of shared/data/nb201 (see its README), checks that they list the
same 15,625 cell strings in the same order, that every string is a cell our codec reads back
to itself, and that the 200-epoch maxima are the published 94.373 / 73.513 / 47.311, then
writes evaluator/spaces/nb201/data/nats_tss_accuracy.csv.gz (deterministic bytes: the same
input gives the same file).

    .venv/bin/python tools/build_nb201_table.py [--source DIR] [--out FILE]

Accuracies are rounded to 6 decimals: the sources carry float32 noise below that, and their
finest real step is 1/180 % (ImageNet16-120, 6,000 test images, mean of 3 seeds).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
from pathlib import Path

from nasagent.evaluator.spaces.nb201.bench import COLUMNS, DATASETS
from nasagent.evaluator.spaces.nb201.cell import CELL_COUNT, OPS, CellStringError, decode, encode

ROOT = Path(__file__).resolve().parent.parent
MEAN_FILE = "nats_tss_test_accuracy_200ep_mean.csv"
RUN_FILE = "nats_tss_test_accuracy_12ep_200ep_one_run.csv"
MEAN_COLUMNS = (
    "CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs",
    "ImageNetTestAccuracy200Epochs",
)
RUN_COLUMNS = (
    "Cifar10TestAccuracy12Epochs", "Cifar100TestAccuracy12Epochs",
    "ImageNet16TestAccuracy12Epochs",
)
MAXIMA = {"cifar10": 94.373, "cifar100": 73.513, "imagenet16-120": 47.311}
DECIMALS = 6


class TableError(Exception):
    """An input that does not hold the benchmark as expected."""


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError as error:
        raise TableError(f"cannot read {path}: {error.strerror}") from None


def _digits(text: str, row: int) -> str:
    try:
        cell = decode(text).cell
    except CellStringError as error:
        raise TableError(f"row {row}: {error}") from None
    if encode(cell) != text:
        raise TableError(f"row {row}: {text!r} is not in canonical form ({encode(cell)})")
    return "".join(str(OPS.index(op)) for op in cell.ops)


def _value(row: dict[str, str], column: str, index: int) -> str:
    try:
        return f"{round(float(row[column]), DECIMALS):.{DECIMALS}f}".rstrip("0").rstrip(".")
    except (KeyError, ValueError):
        raise TableError(f"row {index}: column {column} is missing or not a number") from None


def table_lines(source: Path) -> list[str]:
    """The table's lines (header first), checked against the published figures.

    Raises:
        TableError: the inputs disagree with each other or with the published maxima.
    """
    means, runs = _rows(source / MEAN_FILE), _rows(source / RUN_FILE)
    if not len(means) == len(runs) == CELL_COUNT:
        raise TableError(f"expected {CELL_COUNT} rows in each file, found {len(means)} and "
                         f"{len(runs)}")
    lines, seen = [",".join(COLUMNS)], set()
    for index, (mean, run) in enumerate(zip(means, runs, strict=True)):
        if mean["ArchitectureString"] != run["ArchitectureString"]:
            raise TableError(f"row {index}: the two files list different cells")
        digits = _digits(mean["ArchitectureString"], index)
        seen.add(digits)
        values = [_value(mean, column, index) for column in MEAN_COLUMNS]
        values += [_value(run, column, index) for column in RUN_COLUMNS]
        lines.append(",".join([str(index), digits, *values]))
    if len(seen) != CELL_COUNT:
        raise TableError(f"the files list {len(seen)} distinct cells, not {CELL_COUNT}")
    _check_maxima(means)
    return lines


def _check_maxima(means: list[dict[str, str]]) -> None:
    for dataset, column in zip(DATASETS, MEAN_COLUMNS, strict=True):
        top = round(max(float(row[column]) for row in means), 3)
        if top != MAXIMA[dataset]:
            raise TableError(f"{dataset}: the best mean accuracy is {top}, the benchmark's is "
                             f"{MAXIMA[dataset]}")


def write_table(source: Path, out: Path) -> int:
    """Check the inputs and write the gzip table; returns its size in bytes."""
    payload = ("\n".join(table_lines(source)) + "\n").encode("ascii")
    data = gzip.compress(payload, compresslevel=9, mtime=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared/data/nb201",
                        help="folder of the two NATS-Bench CSV files")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "evaluator/spaces/nb201/data/nats_tss_accuracy.csv.gz")
    args = parser.parse_args(argv)
    try:
        size = write_table(args.source, args.out)
    except TableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({size:,} bytes, {CELL_COUNT} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
