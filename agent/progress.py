"""Live progress: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from nasagent.agent.runlog import Event

if TYPE_CHECKING:
    from nasagent.agent.search import SearchState


class Progress:
    """Shows iteration, best score, valid-proposal count and tokens as the search goes.

    The counters are the search state's, which a resumed run rebuilds from its event log,
    so after a resume the bar continues where the interrupted run left it.

    Args:
        enabled: show the bar (or plain lines); `announce` prints either way.
        label: the run's name on the bar and its lines (compare: "llm seed 0").
    """

    def __init__(
        self, *, enabled: bool = True, console: Console | None = None, label: str = "search"
    ) -> None:
        self.enabled = enabled
        self.label = label
        self.console = console or Console(stderr=True)
        self._bar: RichProgress | None = None
        self._task = TaskID(0)
        self._total = 0

    def announce(self, message: str) -> None:
        """One line on stderr, shown even without a bar (the run folder, for example)."""
        print(f"{self.label}: {message}", file=sys.stderr, flush=True)

    def start(self, total: int, state: SearchState) -> None:
        self._total = total
        if not self.enabled:
            return
        if self.console.is_terminal:
            self._bar = RichProgress(
                TextColumn(f"[bold]{escape(self.label)}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                self.label, total=total, completed=state.last_iteration, status=_status(state)
            )

    def update(self, state: SearchState, event: Event) -> None:
        status = _status(state)
        if self._bar is not None:
            self._bar.update(self._task, completed=state.last_iteration, status=status)
        elif self.enabled and self._should_print(event.iteration):
            line = f"{self.label}: iteration {event.iteration}/{self._total}: {status}"
            print(line, file=sys.stderr, flush=True)

    def _should_print(self, iteration: int) -> bool:
        step = max(1, self._total // 20)
        return iteration % step == 0 or iteration == self._total

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _status(state: SearchState) -> str:
    seen = state.last_iteration
    counts = f"valid {state.valid_proposals}/{seen}"
    if state.best is None or state.best.score is None:
        return counts
    return f"best {state.best.score:.4g} | {counts} | tokens {state.tokens}"
