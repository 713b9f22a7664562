"""The block-string codec: the one decoder (`decode`/`parse`) and the one encoder (`encode`).

The wire format is Zen-NAS's: `Name(a,b,...)` items back to back. The decoder is a small
hand-written scanner that reads each character once, so its cost is linear in the input, and
it never evaluates anything. It accepts a few lenient forms and says what it normalised:

* whitespace between blocks and around arguments;
* the short names of the RZ-NAS prompt (`ConvK3BNRELU`, `ResK1K5K1`) for `Super...` names;
* a Res block written with 4 arguments, read as (in, out, stride, bottleneck) with
  sub_layers = 1 (the form of the RZ-NAS prompt's example).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasagent.evaluator.errors import (
    ArgumentError,
    ArityError,
    BlockSyntaxError,
    EmptyInputError,
    InputTooLargeError,
    UnknownOpError,
)
from nasagent.evaluator.spaces.base import Decoded
from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block
from nasagent.evaluator.spaces.zennas.ops import OPS, SHORT_NAMES, OpSpec

MAX_INPUT_CHARS = 64 * 1024
"""Longest block string accepted; far above any real network (ZenNet-2M is 400 characters)."""

MAX_ARGUMENT_DIGITS = 9

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_WHITESPACE = frozenset(" \t\r\n")


@dataclass
class _Scanner:
    text: str
    pos: int = 0
    notes: list[str] = field(default_factory=list)
    saw_whitespace: bool = False

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_whitespace(self) -> None:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
            self.pos += 1
        self.saw_whitespace |= self.pos > start

    def read_while(self, allowed: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start:self.pos]

    def read_until_delimiter(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ",()":
            self.pos += 1
        return self.text[start:self.pos]


def decode(text: str) -> Decoded:
    """Decode a block string into an `Architecture`, with notes on any normalisation.

    Raises:
        BlockStringError: a subclass naming the problem and its position.
    """
    if len(text) > MAX_INPUT_CHARS:
        raise InputTooLargeError(
            f"block string has {len(text)} characters; at most {MAX_INPUT_CHARS} are accepted",
            MAX_INPUT_CHARS,
        )
    scanner = _Scanner(text)
    blocks: list[Block] = []
    scanner.skip_whitespace()
    while not scanner.at_end():
        blocks.append(_read_block(scanner, len(blocks)))
        scanner.skip_whitespace()
    if not blocks:
        raise EmptyInputError(
            "block string is empty; expected blocks like SuperConvK3BNRELU(3,8,1,1)", 0
        )
    if scanner.saw_whitespace:
        scanner.notes.insert(0, "removed whitespace")
    return Decoded(Architecture(blocks=tuple(blocks)), tuple(scanner.notes))


def parse(text: str) -> Architecture:
    """Decode a block string into an `Architecture` (see `decode`)."""
    return decode(text).architecture


def encode(architecture: Architecture) -> str:
    """The canonical Zen-NAS block string: `parse(encode(a)) == a` for every architecture."""
    return str(architecture)


def canonicalize(text: str) -> str:
    """Decode then encode: the canonical form of a block string."""
    return encode(parse(text))


def _read_block(scanner: _Scanner, index: int) -> Block:
    start = scanner.pos
    name = scanner.read_while(_NAME_CHARS)
    if not name:
        raise _unexpected_character(scanner, index)
    if scanner.peek() != "(":
        if scanner.at_end() or scanner.peek() in _WHITESPACE:
            what = "trailing text" if index else "text"
            raise BlockSyntaxError(
                f"{what} {name!r} is not a block; a block is written Name(args)", start, index
            )
        raise _unexpected_character(scanner, index)
    spec = _resolve_name(scanner, name, start, index)
    scanner.pos += 1
    args = _read_arguments(scanner, spec, index)
    return _make_block(scanner, spec, args, start, index)


def _unexpected_character(scanner: _Scanner, index: int) -> BlockSyntaxError:
    char = scanner.peek()
    if char == ")":
        reason = "unbalanced ')'"
    elif char in ",;|":
        reason = f"separator {char!r}: blocks are written back to back, with nothing between them"
    elif char == "(":
        reason = "'(' without a block name before it"
    else:
        reason = f"unexpected character {char!r}; expected a block name such as SuperResK3K3"
    return BlockSyntaxError(reason, scanner.pos, index)


def _resolve_name(scanner: _Scanner, name: str, start: int, index: int) -> OpSpec:
    if name in OPS:
        return OPS[name]
    if name in SHORT_NAMES:
        scanner.notes.append(f"block {index}: read short name {name} as {SHORT_NAMES[name]}")
        return OPS[SHORT_NAMES[name]]
    raise UnknownOpError(
        f"unknown block {name!r}; valid names: {', '.join(OPS)}", start, index
    )


def _read_arguments(scanner: _Scanner, spec: OpSpec, index: int) -> list[int]:
    args: list[int] = []
    while True:
        token_start = scanner.pos
        token = scanner.read_until_delimiter()
        scanner.saw_whitespace |= token != token.strip()
        delimiter = scanner.peek()
        if delimiter == "(":
            raise BlockSyntaxError(
                f"nested '(' inside {spec.name}(...); arguments are plain integers",
                scanner.pos, index,
            )
        if not delimiter:
            raise BlockSyntaxError(
                f"unbalanced '(': {spec.name}(... is never closed", scanner.pos, index
            )
        args.append(_to_int(token, token_start, spec, len(args), index))
        scanner.pos += 1
        if delimiter == ")":
            return args


def _to_int(token: str, position: int, spec: OpSpec, arg_index: int, index: int) -> int:
    value = token.strip()
    field_name = spec.fields[arg_index] if arg_index < len(spec.fields) else f"argument {arg_index}"
    if not value:
        raise ArgumentError(f"{spec.name}: {field_name} is missing", position, index)
    if value.startswith("-") and value[1:].isdigit():
        raise ArgumentError(f"{spec.name}: {field_name} is negative ({value})", position, index)
    if not (value.isascii() and value.isdigit()):
        raise ArgumentError(
            f"{spec.name}: {field_name} {value[:20]!r} is not a non-negative integer",
            position, index,
        )
    if len(value) > MAX_ARGUMENT_DIGITS:
        raise ArgumentError(
            f"{spec.name}: {field_name} {value[:20]}... is too large", position, index
        )
    return int(value)


def _make_block(scanner: _Scanner, spec: OpSpec, args: list[int], start: int, index: int) -> Block:
    expected = len(spec.fields)
    if spec.has_bottleneck and len(args) == expected - 1:
        scanner.notes.append(
            f"block {index}: {spec.name} given 4 arguments, read as "
            f"(in_channels, out_channels, stride, bottleneck_channels) with sub_layers = 1"
        )
        args = [*args, 1]
    if len(args) != expected:
        raise ArityError(
            f"{spec.name} takes {expected} arguments {spec.signature}, got {len(args)}",
            start, index,
        )
    return Block(op=spec.name, **dict(zip(spec.fields, args, strict=True)))
