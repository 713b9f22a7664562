"""Live progress: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from nasagent.agent.outcomes import Outcome
from nasagent.agent.runlog import Event

if TYPE_CHECKING:
    from nasagent.agent.search import SearchState


class Progress:
    """Shows iteration, best score, valid-proposal rate and tokens as the search goes."""

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._bar: RichProgress | None = None
        self._task = TaskID(0)
        self._total = 0
        self._seen = 0
        self._valid = 0
        self._tokens = 0

    def start(self, total: int, state: SearchState) -> None:
        self._total = total
        self._seen = state.last_iteration
        if not self.enabled:
            return
        if self.console.is_terminal:
            self._bar = RichProgress(
                TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task("search", total=total, completed=self._seen, status="")

    def update(self, state: SearchState, event: Event) -> None:
        self._seen = event.iteration
        self._valid += event.outcome is Outcome.OK
        self._tokens += event.tokens
        best = state.best.score if state.best else None
        status = (
            f"best {best:.4g} | valid {self._valid}/{self._seen} | tokens {self._tokens}"
            if best is not None else f"valid {self._valid}/{self._seen}"
        )
        if self._bar is not None:
            self._bar.update(self._task, completed=self._seen, status=status)
        elif self.enabled and self._should_print(event.iteration):
            line = f"iteration {event.iteration}/{self._total}: {status}"
            print(line, file=sys.stderr, flush=True)

    def _should_print(self, iteration: int) -> bool:
        step = max(1, self._total // 20)
        return iteration % step == 0 or iteration == self._total

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
