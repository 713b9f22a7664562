"""The benchmark's ground truth: NATS-Bench test accuracies of every NAS-Bench-201 cell.

Read from package data (`data/nats_tss_accuracy.csv.gz`, made by
`tools/build_nb201_table.py`), loaded on first use and kept. No torch, no numpy. Ground truth
is for reports and summaries beside a run: nothing here may reach a prompt.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from importlib import resources

from nasagent.evaluator.errors import NasAgentError, UnknownNameError
from nasagent.evaluator.spaces.nb201.cell import CELL_COUNT, OPS, Cell

SOURCE = (
    "NATS-Bench (Dong, Liu, Musial, Gabrys, \"NATS-Bench: Benchmarking NAS Algorithms for "
    "Architecture Topology and Size\", TPAMI 2021) and NAS-Bench-201 (Dong and Yang, ICLR 2020), "
    "as tabulated in the public repository v-tao/nats-bench-landscape (nats_bench.csv)"
)
"""Whom to cite when these figures are shipped or reported."""

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
TABLE_FILE = "nats_tss_accuracy.csv.gz"
COLUMNS = (
    "nats_index", "cell", "cifar10", "cifar100", "imagenet16-120",
    "cifar10_12ep", "cifar100_12ep", "imagenet16-120_12ep",
)
"""The table's header. `cell` is the cell's ops as digits (indices into `OPS`, string order),
the 200-epoch columns are means over the benchmark's seeds, the `_12ep` columns one run."""


class BenchDataError(NasAgentError, ValueError):
    """The packaged table is missing or damaged (reinstall the package)."""


@dataclass(frozen=True)
class BenchRecord:
    """What the benchmark says about one cell on one dataset.

    Attributes:
        cell: the cell.
        dataset: `cifar10`, `cifar100` or `imagenet16-120`.
        nats_index: the cell's index in NATS-Bench (0 .. 15624).
        test_accuracy: test accuracy in percent after 200 epochs, mean over the seeds.
        test_accuracy_12ep: test accuracy in percent after 12 epochs, one run.
    """

    cell: Cell
    dataset: str
    nats_index: int
    test_accuracy: float
    test_accuracy_12ep: float


@dataclass(frozen=True)
class _Table:
    """The table's text columns in NATS-Bench index order, and each cell's row by `Cell.code`.

    The accuracy columns are converted per dataset on first use (`_accuracies`): converting
    all six took about half of the whole load's time.
    """

    row_of_code: tuple[int, ...]
    code_of_row: tuple[int, ...]
    text: dict[str, list[str]]


def _read_columns() -> list[list[str]]:
    data = resources.files("nasagent.evaluator.spaces.nb201").joinpath("data", TABLE_FILE)
    try:
        text = gzip.decompress(data.read_bytes()).decode("ascii")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise BenchDataError(f"cannot read the NAS-Bench-201 table {TABLE_FILE}: {error}") from None
    header, _, body = text.partition("\n")
    if tuple(header.split(",")) != COLUMNS:
        raise BenchDataError(f"{TABLE_FILE} does not start with the header {','.join(COLUMNS)}")
    # One split of the whole body and strided slices: a third of the time of a split per line.
    fields = body.rstrip("\n").replace("\n", ",").split(",")
    if len(fields) != len(COLUMNS) * CELL_COUNT:
        raise BenchDataError(
            f"{TABLE_FILE} does not hold {CELL_COUNT} rows of {len(COLUMNS)} fields"
        )
    return [fields[column::len(COLUMNS)] for column in range(len(COLUMNS))]


@cache
def _table() -> _Table:
    columns = _read_columns()
    try:
        rows = list(map(int, columns[0]))
        codes = list(map(int, columns[1], [len(OPS)] * CELL_COUNT))
    except ValueError as error:
        raise BenchDataError(f"{TABLE_FILE} holds a malformed field: {error}") from None
    if rows != list(range(CELL_COUNT)) or sorted(codes) != rows:
        raise BenchDataError(f"{TABLE_FILE} does not hold each of the {CELL_COUNT} cells once, "
                             "in NATS-Bench index order")
    row_of_code = [0] * CELL_COUNT
    for row, code in enumerate(codes):
        row_of_code[code] = row
    text = dict(zip(COLUMNS[2:], columns[2:], strict=True))
    return _Table(tuple(row_of_code), tuple(codes), text)


@cache
def _accuracies(column: str) -> tuple[float, ...]:
    try:
        return tuple(map(float, _table().text[column]))
    except ValueError as error:
        raise BenchDataError(f"{TABLE_FILE} holds a malformed {column} field: {error}") from None


def _dataset(name: str) -> str:
    if name not in DATASETS:
        raise UnknownNameError("NAS-Bench-201 dataset", name, DATASETS)
    return name


def lookup(cell: Cell, dataset: str) -> BenchRecord:
    """The benchmark's figures for `cell` on `dataset`.

    Raises:
        UnknownNameError: `dataset` is not one of `DATASETS`.
        BenchDataError: the packaged table is damaged.
    """
    name = _dataset(dataset)
    row = _table().row_of_code[cell.code]
    return BenchRecord(
        cell, name, row, _accuracies(name)[row], _accuracies(f"{name}_12ep")[row]
    )


def best(dataset: str) -> BenchRecord:
    """The cell of highest 200-epoch mean test accuracy on `dataset` (lowest NATS index if tied).

    Raises:
        UnknownNameError: `dataset` is not one of `DATASETS`.
    """
    column = _accuracies(_dataset(dataset))
    row = max(range(CELL_COUNT), key=lambda r: (column[r], -r))
    return lookup(Cell.from_code(_table().code_of_row[row]), dataset)


def records(dataset: str) -> tuple[BenchRecord, ...]:
    """Every cell's record on `dataset`, in NATS-Bench index order.

    Raises:
        UnknownNameError: `dataset` is not one of `DATASETS`.
    """
    return tuple(lookup(Cell.from_code(code), dataset) for code in _table().code_of_row)
