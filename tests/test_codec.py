"""The block-string codec: round trips, lenient forms and every grammar error with its position."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED
from nasagent.evaluator.errors import (
    ArgumentError,
    ArityError,
    BlockStringError,
    BlockSyntaxError,
    EmptyInputError,
    InputTooLargeError,
    UnknownOpError,
)
from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block
from nasagent.evaluator.spaces.zennas.codec import (
    MAX_INPUT_CHARS,
    canonicalize,
    decode,
    encode,
    parse,
)
from nasagent.evaluator.spaces.zennas.ops import OPS

ARGUMENT = st.integers(min_value=0, max_value=999_999_999)


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    spec = OPS[draw(st.sampled_from(sorted(OPS)))]
    values = {field: draw(ARGUMENT) for field in spec.fields}
    return Block(op=spec.name, **values)


architectures = st.lists(blocks(), min_size=1, max_size=8).map(
    lambda items: Architecture(blocks=tuple(items))
)


@settings(max_examples=200, deadline=None)
@given(architectures)
def test_parse_inverts_str(arch: Architecture) -> None:
    assert parse(str(arch)) == arch
    assert encode(arch) == str(arch)


@settings(max_examples=200, deadline=None)
@given(architectures)
def test_canonical_strings_are_fixed_points(arch: Architecture) -> None:
    text = str(arch)
    assert str(parse(text)) == text
    assert canonicalize(text) == text
    assert decode(text).notes == ()


def test_every_registered_op_round_trips() -> None:
    for spec in OPS.values():
        args = ",".join(str(8 * (i + 1)) for i in range(len(spec.fields)))
        text = f"{spec.name}({args})"
        assert str(parse(text)) == text


@pytest.mark.parametrize("text", [CIFAR_SEED, IMAGENET_SEED])
def test_reference_seeds_are_canonical(text: str) -> None:
    decoded = decode(text)
    assert str(decoded.architecture) == text
    assert decoded.notes == ()


def test_whitespace_between_blocks_is_removed_with_a_note() -> None:
    decoded = decode(" SuperConvK3BNRELU(3,8,1,1)\n SuperResK3K3(8,16,1,8,1)\n")
    assert str(decoded.architecture) == "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)"
    assert decoded.notes == ("removed whitespace",)


def test_spaces_inside_arguments_are_accepted_as_in_zennas() -> None:
    assert canonicalize("SuperConvK3BNRELU( 3, 8 ,1,1)") == "SuperConvK3BNRELU(3,8,1,1)"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("ConvK3BNRELU(3,8,1,1)", "SuperConvK3BNRELU(3,8,1,1)"),
        ("ResK1K5K1(32,120,1,40,2)", "SuperResK1K5K1(32,120,1,40,2)"),
    ],
)
def test_short_names_are_read_with_a_note(text: str, canonical: str) -> None:
    decoded = decode(text)
    assert str(decoded.architecture) == canonical
    short, full = text.split("(")[0], canonical.split("(")[0]
    assert decoded.notes == (f"block 0: read short name {short} as {full}",)


def test_four_argument_res_block_means_one_sub_layer() -> None:
    decoded = decode("SuperResK1K5K1(32,120,1,40)")
    block = decoded.architecture.blocks[0]
    assert (block.bottleneck_channels, block.sub_layers) == (40, 1)
    assert len(decoded.notes) == 1 and "sub_layers = 1" in decoded.notes[0]


def test_rznas_prompt_example_with_both_lenient_forms() -> None:
    decoded = decode("ConvK3BNRELU(3,32,1,1)ResK1K5K1(32,120,1,40)ResK1K5K1(120,176,2,32)")
    assert str(decoded.architecture) == (
        "SuperConvK3BNRELU(3,32,1,1)SuperResK1K5K1(32,120,1,40,1)SuperResK1K5K1(120,176,2,32,1)"
    )
    assert len(decoded.notes) == 5


def _error(text: str) -> BlockStringError:
    with pytest.raises(BlockStringError) as caught:
        decode(text)
    return caught.value


def test_unknown_name_lists_the_valid_names() -> None:
    error = _error("SuperConvK3BNRELU(3,8,1,1)SuperFoo(8,8,1,1)")
    assert isinstance(error, UnknownOpError)
    assert (error.position, error.block) == (26, 1)
    assert all(name in str(error) for name in OPS)


@pytest.mark.parametrize(
    ("text", "error_type", "position", "block", "fragment"),
    [
        ("SuperConvK3BNRELU(3,8,1)", ArityError, 0, 0, "takes 4 arguments"),
        ("SuperConvK3BNRELU(3,8,1,1,9)", ArityError, 0, 0, "got 5"),
        ("SuperResK3K3(8,16,1)", ArityError, 0, 0, "takes 5 arguments"),
        ("SuperConvK3BNRELU(3,8.0,1,1)", ArgumentError, 20, 0, "'8.0' is not a non-negative"),
        ("SuperConvK3BNRELU(3,-8,1,1)", ArgumentError, 20, 0, "negative"),
        ("SuperConvK3BNRELU(3,,1,1)", ArgumentError, 20, 0, "out_channels is missing"),
        ("SuperConvK3BNRELU(3,1234567890,1,1)", ArgumentError, 20, 0, "too large"),
        ("SuperConvK3BNRELU(3,(8),1,1)", BlockSyntaxError, 20, 0, "nested '('"),
        ("SuperConvK3BNRELU(3,8,1,1", BlockSyntaxError, 25, 0, "never closed"),
        ("SuperConvK3BNRELU(3,8,1,1))", BlockSyntaxError, 26, 1, "unbalanced ')'"),
        ("SuperConvK3BNRELU(3,8,1,1);SuperResK3K3(8,16,1,8,1)", BlockSyntaxError, 26, 1, "';'"),
        ("SuperConvK3BNRELU(3,8,1,1)junk", BlockSyntaxError, 26, 1, "trailing text 'junk'"),
        ('{"arch": "SuperConvK3BNRELU(3,8,1,1)"}', BlockSyntaxError, 0, 0, "'{'"),
        ("", EmptyInputError, 0, None, "empty"),
        ("  \n ", EmptyInputError, 0, None, "empty"),
    ],
)
def test_grammar_errors_name_the_problem_and_its_position(
    text: str, error_type: type[BlockStringError], position: int, block: int | None,
    fragment: str,
) -> None:
    error = _error(text)
    assert type(error) is error_type
    assert (error.position, error.block) == (position, block)
    assert fragment in str(error)
    assert f"at character {position}" in str(error)


def test_oversized_input_is_refused_before_scanning() -> None:
    error = _error("SuperConvK3BNRELU(3,8,1,1)" * (MAX_INPUT_CHARS // 26 + 1))
    assert isinstance(error, InputTooLargeError)
    assert str(MAX_INPUT_CHARS) in str(error)


@pytest.mark.parametrize(
    "text",
    [
        "SuperConvK3BNRELU(" + "1," * 30_000 + ")",
        "(" * 60_000,
        "SuperResK3K3(" * 4_600,
        "a" * 60_000,
        "SuperConvK3BNRELU(3,8,1,1)" * 2_300,
    ],
    ids=["many-arguments", "open-parens", "nested-names", "one-long-name", "many-blocks"],
)
def test_adversarial_60kb_inputs_are_handled(text: str) -> None:
    assert 50_000 < len(text) <= MAX_INPUT_CHARS
    try:
        arch = parse(text)
    except BlockStringError:
        return
    assert len(arch) == 2_300
