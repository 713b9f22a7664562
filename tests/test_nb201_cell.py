"""The NAS-Bench-201 cell codec: parsing, every error kind, both namings, the integer code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nasagent.evaluator.errors import BlockStringError, UnknownNameError
from nasagent.evaluator.spaces.nb201.cell import (
    EDGES,
    MAX_INPUT_CHARS,
    NAMINGS,
    OP_DESCRIPTIONS,
    OPS,
    Cell,
    CellError,
    CellStringError,
    all_cells,
    decode,
    describe_ops,
    encode,
    parse,
)

BEST_C10 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "nor_conv_1x1~2|"
)
BEST_C10_NEUTRAL = "|op_d~0|+|op_d~0|op_d~1|+|op_e~0|op_d~1|op_a~2|"
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
STANDARD_OPS = "avg_pool_3x3, none, nor_conv_1x1, nor_conv_3x3, skip_connect"


def test_a_cell_string_decodes_to_its_ops_in_string_order() -> None:
    decoded = decode(BEST_C10)
    assert decoded.cell.ops == (
        "nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3",
        "nor_conv_1x1",
    )
    assert decoded.notes == ()
    assert decoded.cell.op(2, 3) == "nor_conv_1x1"
    assert list(decoded.cell.edges())[3] == (0, 3, "skip_connect")
    assert str(decoded.cell) == encode(decoded.cell) == BEST_C10


def test_whitespace_around_separators_and_names_is_removed_with_a_note() -> None:
    text = "  | nor_conv_3x3 ~ 0 | +\n|nor_conv_3x3~0|nor_conv_3x3~1|+ |skip_connect~0|" \
           "nor_conv_3x3~1|\tnor_conv_1x1~2|\n"
    decoded = decode(text)
    assert str(decoded.cell) == BEST_C10
    assert decoded.notes == ("removed whitespace",)


ERRORS = [
    # (text, kind, node, edge, what the message must say)
    ("", "empty", None, None, ["empty", "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"]),
    ("   \n", "empty", None, None, ["empty"]),
    ("|none~0|+|none~0|none~1|", "groups", None, None, ["3 groups", "found 2", "'+'"]),
    (NONE + "+|none~0|", "groups", None, None, ["3 groups", "found 4"]),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "group", 1, None,
     ["node 1", "between pipes", "|op~0|"]),
    ("|none~0|++|none~0|none~1|none~2|", "group", 2, None, ["node 2", "|op~0|op~1|"]),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "edges", 2, None,
     ["node 2 needs exactly 2 incoming edges (|op~0|op~1|)", "found 1"]),
    ("|none~0|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "edges", 1, None,
     ["node 1 needs exactly 1 incoming edge (|op~0|)", "found 2"]),
    ("|none~0|+|none~0||none~1|+|none~0|none~1|none~2|", "edges", 2, None, ["found 3"]),
    ("|none~0|+|none~0|none1|+|none~0|none~1|none~2|", "edge", 2, 2,
     ["node 2, edge node 1 -> node 2", "write op~1", STANDARD_OPS, "'none1'"]),
    ("|none~0|+|none~0|~1|+|none~0|none~1|none~2|", "edge", 2, 2, ["write op~1"]),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "index", 2, 2,
     ["node 2, edge node 1 -> node 2", "expected '~1'", "from node 1", "found '~0'"]),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~x|", "index", 3, 5,
     ["node 3, edge node 2 -> node 3", "expected '~2'", "found '~x'"]),
    ("|conv3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "op", 1, 0,
     ["node 1, edge node 0 -> node 1", "unknown op 'conv3x3'", f"valid ops: {STANDARD_OPS}"]),
    ("|none~0|+|none~0|none~1|+|none~0|op_a~1|none~2|", "op", 3, 4,
     ["'op_a' is a neutral op name", "standard names", f"valid ops: {STANDARD_OPS}"]),
]


@pytest.mark.parametrize(("text", "kind", "node", "edge", "phrases"), ERRORS)
def test_every_malformed_string_gets_one_located_actionable_error(
    text: str, kind: str, node: int | None, edge: int | None, phrases: list[str]
) -> None:
    with pytest.raises(CellStringError) as caught:
        decode(text)
    error = caught.value
    assert (error.kind, error.node, error.edge) == (kind, node, edge)
    for phrase in phrases:
        assert phrase in error.message
    assert 0 <= error.position <= len(text)
    assert isinstance(error, BlockStringError)  # the generic handling of block strings applies
    assert f"at character {error.position}" in str(error)


def test_error_positions_point_at_the_offending_text() -> None:
    text = "|none~0|+|none~0|conv~1|+|none~0|none~1|none~2|"
    with pytest.raises(CellStringError) as caught:
        decode(text)
    assert text[caught.value.position:].startswith("conv~1")
    text = "|none~0|+|none~0|none~0|+|none~0|none~1|none~2|"
    with pytest.raises(CellStringError) as caught:
        decode(text)
    assert text[caught.value.position:].startswith("0|+")


def test_an_overlong_input_is_refused_before_it_is_read() -> None:
    with pytest.raises(CellStringError) as caught:
        decode("|" * (MAX_INPUT_CHARS + 1))
    assert caught.value.kind == "too_large"
    assert str(MAX_INPUT_CHARS) in caught.value.message


def test_the_neutral_naming_reads_and_writes_the_same_cells() -> None:
    cell = parse(BEST_C10)
    assert encode(cell, names="neutral") == BEST_C10_NEUTRAL
    assert decode(BEST_C10_NEUTRAL, names="neutral").cell == cell
    assert sorted(NAMINGS["neutral"].spellings) == ["op_a", "op_b", "op_c", "op_d", "op_e"]


def test_a_name_of_the_other_naming_is_an_error_that_lists_the_valid_names() -> None:
    with pytest.raises(CellStringError) as caught:
        decode(BEST_C10, names="neutral")
    message = caught.value.message
    assert "'nor_conv_3x3' is a standard op name" in message
    assert "neutral names; valid ops: op_a, op_b, op_c, op_d, op_e" in message


def test_an_unknown_naming_lists_the_namings() -> None:
    with pytest.raises(UnknownNameError, match="neutral, standard"):
        decode(NONE, names="secret")
    with pytest.raises(UnknownNameError):
        encode(parse(NONE), names="secret")


@pytest.mark.parametrize("names", sorted(NAMINGS))
def test_every_cell_round_trips_through_its_string(names: str) -> None:
    cells = all_cells()
    assert len(cells) == len(set(cells)) == 15_625
    for cell in cells:
        assert decode(encode(cell, names), names).cell == cell


def test_the_integer_code_is_dense_stable_and_invertible() -> None:
    cells = all_cells()
    assert [cell.code for cell in cells] == list(range(15_625))
    assert all(Cell.from_code(cell.code) == cell for cell in cells[::97])
    assert parse(NONE).code == 0
    assert parse(BEST_C10).code == int("333132", 5)  # op indices read as base-5 digits
    with pytest.raises(CellError, match="15625"):
        Cell.from_code(15_625)


def test_a_cell_built_from_code_is_checked() -> None:
    with pytest.raises(CellError, match="6 edges"):
        Cell(("none",) * 5)
    with pytest.raises(CellError, match="valid ops: none, skip_connect"):
        Cell(("none",) * 5 + ("conv",))


@pytest.mark.parametrize("names", sorted(NAMINGS))
def test_each_op_is_described_under_each_naming(names: str) -> None:
    described = describe_ops(names)
    assert [name for name, _ in described] == sorted(NAMINGS[names].spellings)
    assert sorted(text for _, text in described) == sorted(OP_DESCRIPTIONS[op] for op in OPS)
    assert "ReLU" in OP_DESCRIPTIONS["nor_conv_3x3"] and "count_include_pad" in \
        OP_DESCRIPTIONS["avg_pool_3x3"]
    assert len(EDGES) == 6


@given(st.text(alphabet="|+~012 nonesk_ipcv3x", max_size=80))
def test_any_text_decodes_to_a_cell_or_raises_the_one_error(text: str) -> None:
    try:
        cell = decode(text).cell
    except CellStringError as error:
        assert error.message
        return
    assert parse(encode(cell)) == cell
