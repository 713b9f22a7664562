"""One exception root for the evaluator; every error says what was wrong and where."""

from __future__ import annotations

from collections.abc import Iterable


class NasAgentError(Exception):
    """Root of every error nasagent raises on purpose."""


class UnknownNameError(NasAgentError, KeyError):
    """A name that is not registered; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}")

    def __str__(self) -> str:
        return str(self.args[0])


class ArchitectureError(NasAgentError, ValueError):
    """A decoded architecture that cannot be built or costed (a scoring of it is INVALID)."""


class BlockStringError(NasAgentError, ValueError):
    """An architecture string that cannot be decoded (a Zen-NAS block string, an NB201 cell).

    Attributes:
        position: 0-based character offset of the problem in the input.
        block: 0-based index of the block being read, or None before the first block.
    """

    def __init__(self, message: str, position: int, block: int | None = None) -> None:
        self.message = message
        self.position = position
        self.block = block
        where = f"at character {position}" + ("" if block is None else f" (block {block})")
        super().__init__(f"{message} {where}")


class EmptyInputError(BlockStringError):
    """The input holds no block."""


class InputTooLargeError(BlockStringError):
    """The input is longer than the decoder accepts."""


class BlockSyntaxError(BlockStringError):
    """Unbalanced or nested parentheses, separators, stray or trailing text."""


class UnknownOpError(BlockStringError):
    """A block name that is not a registered super block."""


class ArityError(BlockStringError):
    """A block with the wrong number of arguments."""


class ArgumentError(BlockStringError):
    """An argument that is not a non-negative integer."""
