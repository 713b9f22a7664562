"""The search loop: propose, validate, score, apply in order, reflect, log, resume.

Determinism. Iteration i draws its randomness from its own RNG seeded by (run seed, i), and
is dispatched right after iteration i - K has been applied (K = concurrency), so the state it
sees (population, history, lessons) depends only on the seed, K and the LLM replies. Results
are applied strictly in iteration order. A resumed run rebuilds every state from the event
log and dispatches the missing iterations at the same points, so a run killed at any moment
and resumed writes the same events as one that was never interrupted. A run stopped by a
streak of failed LLM calls is the exception by design: on resume that streak is set aside and
its iterations run again (agent.failed_streak), so the run finishes only once they succeed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shlex
import signal
import threading
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasagent.agent.budget import BudgetGuard
from nasagent.agent.config import ConfigError, RunConfig, score_settings_for, write_config
from nasagent.agent.execution import Scoring, start_scoring
from nasagent.agent.failed_streak import (
    finished_at,
    set_aside_events,
    set_aside_record,
    set_aside_stopping_streak,
)
from nasagent.agent.labels import llm_record
from nasagent.agent.llm.base import LLMBackend
from nasagent.agent.llm.factory import make_backend
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.outcomes import HistoryEntry, Outcome, ScoredArch
from nasagent.agent.population import Member, Population
from nasagent.agent.preflight import (
    check_out_folder,
    check_resume,
    check_run_folder,
    check_run_inputs,
)
from nasagent.agent.pricing import Spend
from nasagent.agent.progress import Progress
from nasagent.agent.proposers import (
    Proposal,
    ProposalContext,
    Proposer,
    constraints_for,
    make_proposer,
    prompt_settings_for,
    space_options,
)
from nasagent.agent.reference import (
    Reconciled,
    ReferenceScores,
    drift_records,
    drift_summary,
    load_reference,
    not_rescored,
)
from nasagent.agent.reflection import Reflector
from nasagent.agent.runlog import (
    BEST_FILE,
    CONFIG_FILE,
    EVENTS_FILE,
    POPULATION_FILE,
    SUMMARY_FILE,
    Event,
    append_jsonl,
    read_events,
    read_json,
    repair_torn_tail,
    write_json,
)
from nasagent.agent.scoring import Scorer
from nasagent.agent.session import backend_options, llm_spec, open_backend
from nasagent.agent.truth import (
    FITNESS_BENCHMARK,
    TRUTH_OUTCOMES,
    require_table,
    table_of,
    table_record,
    table_scoring,
    truth_of,
)
from nasagent.agent.workerpool import failed_result
from nasagent.evaluator import cpu_kernels
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import (
    ProxyStatus,
    ScoreResult,
    ScoreSettings,
    get_proxy,
    higher_is_better,
    inputs_used,
    prepare_settings,
)
from nasagent.evaluator.validation import check

logger = logging.getLogger(__name__)


STOP_POLL_S = 0.1
"""How often a loop waiting on a proposal looks at its stop signal."""


class SearchStopped(Exception):
    """Raised inside the loop to end the run unfinished (failed LLM calls, or a stop request)."""


class StopSignal:
    """Asks a running search to stop cleanly; safe to set from any thread.

    The loop checks it before each dispatch and while it waits for a proposal, cancels what is
    in flight and ends with `finished=False` and the request's reason. Nothing that was applied
    is lost: the run directory resumes like one that was killed.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason: str | None = None

    def request(self, reason: str = "stopped on request") -> None:
        """Ask the loop to stop; the first reason given is kept."""
        if self._reason is None:
            self._reason = reason
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str | None:
        return self._reason


class RunInterrupted(NasAgentError):
    """Ctrl-C (SIGINT) or SIGTERM stopped a run; its folder resumes where it stopped."""

    def __init__(self, run_dir: Path, signal_name: str) -> None:
        self.run_dir = run_dir
        self.signal_name = signal_name
        super().__init__(f"{signal_name} stopped the run in {run_dir}")

    @property
    def resume_command(self) -> str:
        return resume_command(self.run_dir)


def resume_command(run_dir: Path) -> str:
    """The exact command that continues the run in `run_dir`."""
    return f"nasagent search --resume {shlex.quote(str(run_dir))}"


@dataclass(frozen=True)
class Evaluated:
    """A finished proposal, waiting for its turn to be applied."""

    context: ProposalContext
    proposal: Proposal
    scored: Reconciled | None
    seconds: float

    @property
    def result(self) -> ScoreResult | None:
        return self.scored.result if self.scored else None


@dataclass
class RunResult:
    """How a call to `run_search` ended."""

    run_dir: Path
    finished: bool
    stopped_reason: str | None
    best: Event | None


@dataclass
class SearchState:
    """Everything the loop knows, rebuilt from the event log alone on resume."""

    config: RunConfig
    population: Population
    history: deque[HistoryEntry]
    seed_arch: str
    seed_score: float | None = None
    lessons: tuple[str, ...] = ()
    scored: dict[str, Event] = field(default_factory=dict)
    best: Event | None = None
    last_iteration: int = 0
    consecutive_failures: int = 0
    spent: Spend = Spend()
    valid_proposals: int = 0
    tokens: int = 0

    def apply(self, event: Event) -> None:
        """Fold one event into the state (the same code for live and resumed runs)."""
        self.tokens += event.tokens
        if event.phase == "search":
            self.last_iteration = event.iteration
            self.valid_proposals += event.outcome is Outcome.OK
            self.history.append(_history_entry(event))
            failed = event.outcome is Outcome.LLM_ERROR
            self.consecutive_failures = self.consecutive_failures + 1 if failed else 0
        if event.lessons is not None:
            self.lessons = event.lessons
        self.spent += _event_spend(event)
        if event.outcome in (Outcome.OK, Outcome.SCORE_FAILED) and event.arch:
            self.scored[event.arch] = event
        if event.outcome is Outcome.OK and event.arch and event.score is not None:
            self._add_scored(event, event.arch, event.score)

    def _add_scored(self, event: Event, arch: str, score: float) -> None:
        if event.mutator == "seed":
            self.seed_score = score
        else:
            self.population.add(Member(arch, score))
        best = self.best.score if self.best else None
        if best is None or self.population.better(score, best):
            self.best = event

    def count_set_aside(self, events: list[Event]) -> None:
        """Add what set-aside attempts cost (agent.failed_streak): spent, though not a result."""
        for event in events:
            self.tokens += event.tokens
            self.spent += _event_spend(event)

    def recent_history(self) -> tuple[HistoryEntry, ...]:
        if not self.config.reflection or self.config.history_size == 0:
            return ()
        return tuple(self.history)[-self.config.history_size:]


def _event_spend(event: Event) -> Spend:
    return Spend(event.tokens_in, event.tokens_out, event.tokens_cached, event.cost_usd)


def _history_entry(event: Event) -> HistoryEntry:
    return HistoryEntry(
        iteration=event.iteration, parent=event.parent or "", parent_score=event.parent_score,
        arch=event.arch, outcome=event.outcome, score=event.score, errors=event.errors,
        params=event.params, flops=event.flops, layers=event.layers,
        expected_score=event.expected_score,
    )


class Search:
    """One run directory being searched."""

    def __init__(
        self, config: RunConfig, run_dir: Path, proposer: Proposer, reflector: Reflector | None,
        *, progress: Progress, known_scores: dict[str, Event] | None = None,
        reference: ReferenceScores | None = None,
        stop: StopSignal | None = None,
        scoring: Scoring | None = None,
    ) -> None:
        self.config = config
        self.stop = stop
        self.run_dir = run_dir
        self.proposer = proposer
        self.reflector = reflector
        self.progress = progress
        self.constraints = constraints_for(config)
        self.space = self.constraints.space
        self.table = table_of(self.space)
        by_table = config.fitness == FITNESS_BENCHMARK
        self.higher_is_better = by_table or higher_is_better(config.proxy, config.search_space)
        self.score_settings = score_settings_for(config)
        if not by_table:  # e.g. the combined proxy's normalisation, fixed before any score
            self.score_settings = prepare_settings(self.score_settings)
        self.state = SearchState(
            config, Population(config.population, self.higher_is_better),
            deque(maxlen=max(config.history_size, config.reflect_every, 1)),
            seed_arch=self.space.canonical(config.seed_arch),
        )
        if by_table:  # the reference arm looks accuracies up; it shares no scoring pool
            scoring = table_scoring(require_table(self.space))
        self.scorer = Scorer(
            self.score_settings, scoring or start_scoring(config),
            owns=scoring is None or by_table,
        )
        self.in_flight: dict[int, asyncio.Task[Evaluated]] = {}
        self.known_scores = known_scores or {}
        self.guard = BudgetGuard.of(config)
        self.budget_stop: str | None = None
        self.reference = reference

    # ---- driving -------------------------------------------------------------------------

    async def run(self) -> RunResult:
        started = time.monotonic()
        for event in self.known_scores.values():
            self._remember_score(event)
        try:
            await self._restore_and_start()
            await self._apply_in_order()
            reason = self._budget_reason()
        except SearchStopped as stop:
            reason = str(stop)
        except asyncio.CancelledError:  # Ctrl-C or SIGTERM: the log is whole up to here
            self._write_summary(False, "interrupted; resume with: "
                                + resume_command(self.run_dir), time.monotonic() - started)
            raise
        finally:
            await self._cancel_in_flight()
            self.scorer.close()
            self.progress.close()
        reason = reason or self._all_llm_calls_failed() or self._nothing_scored()
        finished = reason is None
        self._write_summary(finished, reason, time.monotonic() - started)
        return RunResult(self.run_dir, finished, reason, self.state.best)

    async def _restore_and_start(self) -> None:
        self.state.count_set_aside(set_aside_events(self.run_dir))
        events = read_events(self.run_dir)
        initial = [e for e in events if e.phase == "init"]
        for event in initial:
            self._apply(event, write=False)
        await self._score_initial(already=len(initial))
        logged = {e.iteration for e in events if e.phase == "search"}
        self._dispatch_window(0, logged)
        for event in (e for e in events if e.phase == "search"):
            self._apply(event, write=False)
            self._dispatch_window(event.iteration, logged)
        self.progress.start(self.config.iterations, self.state)

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop.requested:
            raise SearchStopped(
                f"{self.stop.reason}; resume with: nasagent search --resume {self.run_dir}"
            )

    def _dispatch_window(self, applied: int, logged: set[int]) -> None:
        """Dispatch the iterations whose turn comes once iteration `applied` is applied."""
        self._check_stop()
        first = applied + self.config.concurrency if applied else 1
        for iteration in range(first, applied + self.config.concurrency + 1):
            if iteration <= self.config.iterations and iteration not in logged:
                if not self._within_budget(iteration, applied):
                    return
                self._dispatch(iteration)

    def _within_budget(self, iteration: int, applied: int) -> bool:
        """Ask the guard once per dispatch; after its first refusal nothing more is sent."""
        if self.budget_stop is None and self.guard is not None:
            in_flight = iteration - applied - 1  # all dispatched: the guard had not refused
            self.budget_stop = self.guard.refusal(self.state.spent, applied, in_flight)
        return self.budget_stop is None

    def _budget_reason(self) -> str | None:
        if self.budget_stop is None:
            return None
        return (f"{self.budget_stop}; continue with a higher budget: nasagent search --resume "
                f"{self.run_dir} --max-cost USD / --max-total-tokens N")

    def _dispatch(self, iteration: int) -> None:
        context = self._context(iteration)
        self.in_flight[iteration] = asyncio.create_task(self._evaluate(context))

    async def _apply_in_order(self) -> None:
        while self.in_flight:
            iteration = min(self.in_flight)
            event = await self._event(await self._finished(self.in_flight[iteration]))
            del self.in_flight[iteration]
            self._apply(event, write=True)
            self.progress.update(self.state, event)
            if self.state.consecutive_failures >= self.config.max_consecutive_failures:
                raise SearchStopped(
                    f"stopped after {self.state.consecutive_failures} consecutive failed LLM "
                    f"calls (last: {'; '.join(event.errors)[:300]}); fix the endpoint and resume "
                    f"with: nasagent search --resume {self.run_dir}"
                )
            self._dispatch_window(iteration, set())

    async def _finished(self, task: asyncio.Task[Evaluated]) -> Evaluated:
        """The task's result; with a stop signal, polled so that a stop request ends the wait."""
        if self.stop is None:
            return await task
        while not task.done():
            self._check_stop()
            await asyncio.wait({task}, timeout=STOP_POLL_S)
        return task.result()

    async def _cancel_in_flight(self) -> None:
        for task in self.in_flight.values():
            task.cancel()
        await asyncio.gather(*self.in_flight.values(), return_exceptions=True)
        self.in_flight.clear()

    # ---- one iteration -------------------------------------------------------------------

    def _context(self, iteration: int) -> ProposalContext:
        rng = random.Random(f"{self.config.seed}:{iteration}")
        parent = self.state.population.select_parent(
            rng, self.config.parent_selection, self.config.tournament_size
        )
        arch, score = (parent.arch, parent.score) if parent else (
            self.state.seed_arch, self.state.seed_score
        )
        return ProposalContext(
            iteration=iteration, parent=arch, parent_score=score,
            num_replaces=2 if parent else 1, rng=rng,
            history=self.state.recent_history(), best=self._best_so_far(),
            lessons=self.state.lessons if self.config.reflection else (),
        )

    def _best_so_far(self) -> ScoredArch | None:
        best = self.state.best
        if best is None or best.arch is None or best.score is None:
            return None
        return ScoredArch(arch=best.arch, score=best.score, iteration=best.iteration)

    async def _evaluate(self, context: ProposalContext) -> Evaluated:
        started = time.monotonic()
        proposal = await self.proposer.propose(context)
        scored = None
        if proposal.outcome is Outcome.OK and proposal.architecture is not None:
            scored = await self._score(proposal.architecture)
        return Evaluated(context, proposal, scored, time.monotonic() - started)

    async def _score(self, architecture: Any) -> Reconciled:
        """Score (or recall) an architecture; with a reference, decide from the recorded result
        and keep this machine's rescoring aside (see agent.reference).

        An architecture whose memory estimate is over the cap is never built: its result is
        `over_budget`, or, replaying a recording that scored it, the recorded result with
        nothing rescored."""
        canonical = self.space.encode(architecture)
        if self.scorer.remembered(canonical):
            return Reconciled(await self.scorer.score(canonical))
        refusal = self.score_settings.memory_refusal(architecture)
        if refusal is not None:
            return self._refused(canonical, refusal)
        result = await self.scorer.score(canonical)
        if self.reference is None:
            return Reconciled(result)
        return self.reference.reconcile(canonical, result)

    def _refused(self, canonical: str, refusal: str) -> Reconciled:
        refused = failed_result(self.score_settings, ProxyStatus.OVER_BUDGET, 0.0, refusal)
        if self.reference is None:
            return Reconciled(refused)
        return self.reference.not_rescored(canonical, refused)

    async def _event(self, evaluated: Evaluated) -> Event:
        event = self._make_event(evaluated)
        if self.reflector and self.reflector.due(event.iteration):
            event = await self._reflect(event, self.reflector)
        return event

    # ---- events --------------------------------------------------------------------------

    def _make_event(self, evaluated: Evaluated) -> Event:
        context, proposal, result = evaluated.context, evaluated.proposal, evaluated.result
        canonical = None if proposal.architecture is None else self.space.encode(
            proposal.architecture)
        outcome, score, status = self._judge(proposal.outcome, canonical, result)
        cost = self._cost(proposal.architecture)
        errors, notes = _score_message(status, result)
        return Event(
            iteration=context.iteration, phase="search", mutator=str(self.config.mutator),
            parent=context.parent, parent_score=context.parent_score, outcome=outcome,
            arch=canonical, score=score, status=status, errors=proposal.errors + errors,
            notes=proposal.notes + notes,
            expected_score=proposal.expected_score, llm_calls=proposal.llm_calls,
            tokens=proposal.tokens, **proposal.spend.fields(),
            repairs=proposal.repairs, seconds=evaluated.seconds,
            score_seconds=result.seconds if result and status else 0.0,
            llm_seconds=proposal.llm_seconds, timestamp=time.time(),
            best_score=self._best_after(outcome, score), **cost,
            **_rescoring(evaluated.scored if status else None), **self._truth(outcome, canonical),
        )

    def _judge(
        self, outcome: Outcome, canonical: str | None, result: ScoreResult | None
    ) -> tuple[Outcome, float | None, str | None]:
        if outcome is not Outcome.OK or canonical is None:
            return outcome, None, None
        if canonical in self.state.scored:  # the seed is there too, from the init phase
            return Outcome.DUPLICATE, self.state.scored[canonical].score, None
        if result is None:
            return Outcome.SCORE_FAILED, None, "error"
        return scored_outcome(result.status), result.score, result.status

    def _best_after(self, outcome: Outcome, score: float | None) -> float | None:
        best = self.state.best.score if self.state.best else None
        if outcome is Outcome.OK and score is not None:
            if best is None or self.state.population.better(score, best):
                return score
        return best

    def _cost(self, architecture: Any) -> dict[str, float | int | None]:
        cost = None if architecture is None else self.space.cost(architecture, self.constraints)
        if cost is None:
            return {"params": None, "flops": None, "layers": None}
        return {"params": cost.params, "flops": cost.flops, "layers": cost.layers}

    def _truth(self, outcome: Outcome, canonical: str | None) -> dict[str, Any]:
        """The event's `truth` field: the benchmark's figures of a valid architecture."""
        truth = truth_of(self.table, canonical) if outcome in TRUTH_OUTCOMES else None
        return {} if truth is None else {"truth": truth}

    async def _reflect(self, event: Event, reflector: Reflector) -> Event:
        history = (*self.state.history, _history_entry(event))
        window = history[-self.config.reflect_every:]
        reflection = await reflector.reflect(event.iteration, window, self.state.lessons)
        notes = event.notes + ((reflection.error,) if reflection.error else ())
        return event.model_copy(update={
            "lessons": reflection.lessons, "notes": notes,
            "llm_calls": event.llm_calls + reflection.llm_calls,
            "tokens": event.tokens + reflection.tokens,
            **(_event_spend(event) + reflection.spend).fields(),
        })

    def _apply(self, event: Event, *, write: bool) -> None:
        if write:
            append_jsonl(self.run_dir / EVENTS_FILE, event.model_dump(mode="json"))
        self._remember_score(event)
        best_before = self.state.best
        self.state.apply(event)
        if write:
            self._checkpoint(best_changed=self.state.best is not best_before)

    def _remember_score(self, event: Event) -> None:
        """Keep the scorer's cache in step with the log, so a resumed run never re-scores."""
        if event.arch is None or event.status is None:
            return
        self.scorer.remember(event.arch, ScoreResult(
            proxy=self.config.proxy, score=event.score, status=ProxyStatus(event.status),
            seconds=event.score_seconds, seed=self.config.score_seed,
            higher_is_better=self.higher_is_better,
        ))

    def _checkpoint(self, *, best_changed: bool) -> None:
        write_json(self.run_dir / POPULATION_FILE, {
            "iteration": self.state.last_iteration,
            "population": self.state.population.snapshot(),
            "lessons": list(self.state.lessons),
        })
        if best_changed and self.state.best is not None:
            write_json(self.run_dir / BEST_FILE, self.state.best.model_dump(mode="json"))

    # ---- initial population --------------------------------------------------------------

    async def _score_initial(self, *, already: int) -> None:
        """Score the seed, then the random initial members not logged yet."""
        seed = self.space.decode(self.state.seed_arch).architecture
        if already == 0:
            self._apply(await self._init_event(seed, "seed", None), write=True)
        for k in range(max(already - 1, 0), self.config.init_population):
            self._check_stop()
            member = self._random_member(seed, k)
            self._apply(await self._init_event(member, "init", self.state.seed_arch), write=True)

    def _random_member(self, seed: Any, k: int) -> Any:
        rng = random.Random(f"{self.config.seed}:init:{k}")
        return self.space.initial_member(seed, rng, space_options(self.config))

    async def _init_event(self, architecture: Any, mutator: str, parent: str | None) -> Event:
        """Score the seed (always, as the first parent's score) or an initial member."""
        canonical = self.space.encode(architecture)
        report = check(architecture, self.constraints)
        outcome, score, status, scored = Outcome.OK, None, None, None
        if mutator != "seed" and not report.valid:
            outcome = Outcome.OVER_BUDGET if report.over_budget else Outcome.INVALID
        elif canonical == self.state.seed_arch and parent:
            outcome = Outcome.NO_CHANGE  # a mutation of the seed that gave the seed back
        elif canonical in self.state.scored:
            outcome = Outcome.DUPLICATE
        else:
            scored = await self._score(architecture)
            score, status = scored.result.score, scored.result.status
            outcome = scored_outcome(scored.result.status)
        result = scored.result if scored else None
        errors, notes = _score_message(status, result)
        return Event(
            iteration=0, phase="init", mutator=mutator, parent=parent, parent_score=None,
            outcome=outcome, arch=canonical, score=score, status=status,
            errors=tuple(report.error_lines()) + errors, best_score=None, notes=notes,
            seconds=result.seconds if result else 0.0, timestamp=time.time(),
            **self._cost(architecture), **Spend().fields(), **_rescoring(scored),
            **self._truth(outcome, canonical),
        )

    # ---- summary -------------------------------------------------------------------------

    def _all_llm_calls_failed(self) -> str | None:
        """Why a run whose every proposal was a failed LLM call is not finished, else None."""
        search = [e for e in read_events(self.run_dir) if e.phase == "search"]
        if not search or any(e.outcome is not Outcome.LLM_ERROR for e in search):
            return None
        last = "; ".join(search[-1].errors)[:300]
        return (f"all {len(search)} proposals failed at the LLM call (last: {last}); the run "
                f"holds no LLM result: fix the backend and resume with: "
                f"{resume_command(self.run_dir)}")

    def _nothing_scored(self) -> str | None:
        """Why a run in which no architecture got a score is not finished, else None."""
        if self.state.best is not None:
            return None
        failed = [e for e in read_events(self.run_dir) if e.outcome is Outcome.SCORE_FAILED]
        last = "; ".join(failed[-1].notes)[:300] if failed else "none was scored"
        return (f"no architecture got a score ({len(failed)} scorings failed; last: {last}): "
                f"the run has no best architecture")

    def _write_summary(self, finished: bool, reason: str | None, wall: float) -> None:
        previous = _read_previous_wall(self.run_dir)
        events = read_events(self.run_dir)
        search = [e for e in events if e.phase == "search"]
        spent_events = [*events, *set_aside_events(self.run_dir)]  # the calls were made
        write_json(self.run_dir / SUMMARY_FILE, {
            "finished": finished, "stopped_reason": reason,
            "mutator": str(self.config.mutator), "llm": llm_record(self.config),
            "score_drift": self._drift(events),
            "proxy": self.config.proxy, "fitness": self.config.fitness,
            "higher_is_better": self.higher_is_better, "op_names": self.config.op_names,
            **proxy_record(self.score_settings),
            "truth": table_record(self.table),
            "seed": self.config.seed, "iterations": self.config.iterations,
            "proposals": len(search), "outcomes": _count_outcomes(search),
            "valid_rate": _rate(search, Outcome.OK),
            "duplicate_rate": _rate(search, Outcome.DUPLICATE),
            "llm_calls": sum(e.llm_calls for e in spent_events),
            "tokens": sum(e.tokens for e in spent_events),
            "set_aside": set_aside_record(self.run_dir),
            **self.state.spent.fields(), "max_cost": self.config.max_cost,
            "max_total_tokens": self.config.max_total_tokens,
            "seed_score": self.state.seed_score, "lessons": list(self.state.lessons),
            "best": self.state.best.model_dump(mode="json") if self.state.best else None,
            "wall_seconds": previous + wall,
            "execution": self.scorer.scoring.plan.model_dump(mode="json"),
            "cpu_kernels": cpu_kernels.describe(),
        })

    def _drift(self, events: list[Event]) -> dict[str, object] | None:
        if self.reference is None:
            return None
        summary = drift_summary(drift_records(events, self.reference), self.reference.rtol,
                                not_rescored(events))
        return {**summary, "reference": self.reference.source}


def scored_outcome(status: ProxyStatus) -> Outcome:
    """The outcome of a proposal that reached scoring: ok, over_budget (its memory estimate is
    over the cap: never built) or score_failed."""
    if status is ProxyStatus.OK:
        return Outcome.OK
    return Outcome.OVER_BUDGET if status is ProxyStatus.OVER_BUDGET else Outcome.SCORE_FAILED


def _score_message(
    status: str | None, result: ScoreResult | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(errors, notes) an event adds for its scoring's message: a refusal over the memory cap
    is an error (what the model is shown it must change); any other message is a note."""
    if result is None or not result.message:
        return (), ()
    if status == ProxyStatus.OVER_BUDGET:
        return (result.message,), ()
    return (), (result.message,)


def proxy_record(settings: ScoreSettings) -> dict[str, Any]:
    """What a summary records of how the proxy was computed: the proxy data, what the proxy
    read, and a combined proxy's members and fixed normalisation (None otherwise)."""
    combined = get_proxy(settings.proxy).inputs == "members"
    return {
        "proxy_data": settings.proxy_data, "proxy_inputs": inputs_used(settings),
        "combination": settings.combination.model_dump(mode="json") if combined else None,
    }


def _rescoring(scored: Reconciled | None) -> dict[str, Any]:
    """The event fields of a rescoring checked against a recorded result (none otherwise)."""
    if scored is None or scored.rescore_status is None:
        return {}
    return {"rescored": scored.rescored, "rescore_status": scored.rescore_status}


def _read_previous_wall(run_dir: Path) -> float:
    path = run_dir / SUMMARY_FILE
    return float(read_json(path).get("wall_seconds", 0.0)) if path.exists() else 0.0


def _count_outcomes(events: list[Event]) -> dict[str, int]:
    counts = {str(outcome): 0 for outcome in Outcome}
    for event in events:
        counts[str(event.outcome)] += 1
    return counts


def _rate(events: list[Event], outcome: Outcome) -> float | None:
    return sum(e.outcome is outcome for e in events) / len(events) if events else None


# ---- entry point -------------------------------------------------------------------------


def prepare_run_dir(config: RunConfig, run_dir: Path, *, resume: bool) -> None:
    """Create a fresh run directory, or check that a resumable one is there.

    Raises:
        ConfigError: `run_dir` is a file, already holds a run or another command's result
            (fresh start; see agent.preflight.check_out_folder), or is not a run or has run
            more iterations than `config.iterations` (resume).
    """
    if resume:
        check_run_folder(run_dir, "--resume")
    else:
        check_out_folder(run_dir, "run")
    has_log = (run_dir / EVENTS_FILE).exists()
    if resume:
        check_resume(config, run_dir)
        repair_torn_tail(run_dir / EVENTS_FILE)  # llm_calls.jsonl: its recorder repairs it
        write_config(config, run_dir / CONFIG_FILE)  # --iterations / --max-cost may have grown
        return
    if has_log:
        raise ConfigError(
            f"{run_dir} already holds a run; continue it with `nasagent search --resume {run_dir}` "
            f"or choose another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(config, run_dir / CONFIG_FILE)


async def run_search_async(
    config: RunConfig, run_dir: Path, *, resume: bool = False, progress: bool = True,
    backend: LLMBackend | None = None, known_scores: dict[str, Event] | None = None,
    reference: ReferenceScores | None = None,
    stop: StopSignal | None = None,
    scoring: Scoring | None = None,
    label: str = "search",
) -> RunResult:
    """Run (or resume) a search in `run_dir`; see `run_search`."""
    check_run_inputs(config, replaying=reference is not None)
    BudgetGuard.of(config)  # a budget it cannot check is an error before anything is written
    live = backend or _live_backend(config)  # before any file is written: a missing key stops here
    try:
        prepare_run_dir(config, run_dir, resume=resume)
        set_aside = set_aside_stopping_streak(run_dir, config) if resume else None
    except BaseException:
        if live is not None:
            await live.aclose()
        raise
    shown = Progress(enabled=progress, label=label)
    shown.announce(_start_line(run_dir, resume, config))
    if set_aside is not None:
        shown.announce(set_aside.describe(run_dir))
    if resume and finished_at(run_dir, config):
        return RunResult(run_dir, True, None, _best_event(run_dir))
    async with open_backend(config, run_dir, backend=live) as llm:
        proposer = make_proposer(config, llm)
        reflector = Reflector(config, llm, prompt_settings_for(config)) if (
            llm is not None and config.reflection and MUTATORS.get(config.mutator).reflects
        ) else None
        search = Search(
            config, run_dir, proposer, reflector, progress=shown, known_scores=known_scores,
            stop=stop, scoring=scoring,
            reference=reference or (reference_for(config) if llm is not None else None),
        )
        return await search.run()


def _live_backend(config: RunConfig) -> LLMBackend | None:
    if not MUTATORS.get(config.mutator).needs_llm:
        return None
    return make_backend(llm_spec(config), backend_options(config))


def _start_line(run_dir: Path, resume: bool, config: RunConfig) -> str:
    if not resume:
        return f"run folder: {run_dir} (new, {config.iterations} iterations)"
    done = max((e.iteration for e in read_events(run_dir) if e.phase == "search"), default=0)
    return f"run folder: {run_dir} (resuming after iteration {done} of {config.iterations})"


def run_search(
    config: RunConfig, run_dir: Path, *, resume: bool = False, progress: bool = True,
    backend: LLMBackend | None = None, known_scores: dict[str, Event] | None = None,
    reference: ReferenceScores | None = None,
    stop: StopSignal | None = None,
    scoring: Scoring | None = None,
    label: str = "search",
) -> RunResult:
    """Run a search in `run_dir`, or continue one (`resume=True`) exactly where it stopped.

    Args:
        config: the resolved configuration (on resume: the run directory's own).
        run_dir: the run directory; created if new.
        resume: continue a run killed at any point; returns at once if it had finished.
            Iterations lost to the streak of failed LLM calls that stopped the run are set
            aside and run again (agent.failed_streak).
        progress: show a progress bar (plain lines when not a terminal).
        backend: an LLM backend to use instead of the one named by `config.llm` (tests).
        known_scores: events whose recorded scores are reused instead of scoring again.
        reference: recorded results the run decides from, its own scorings kept aside as a
            check against them (see agent.reference); by default those of the run a `replay:`
            LLM backend replays.
        stop: a signal another thread may set to end the run cleanly (finished=False, the
            signal's reason as stopped_reason); the run directory stays resumable.
        scoring: a started executor to score on instead of starting one from `config`'s
            execution settings (compare shares one between the runs it runs at once).
        label: what the progress bar and its lines call this run (compare: arm and seed).

    Raises:
        RunInterrupted: Ctrl-C or SIGTERM stopped the run; the folder is resumable as it is.
        NasAgentError: the inputs were refused before anything was written.
    """
    work = run_search_async(
        config, run_dir, resume=resume, progress=progress, backend=backend,
        known_scores=known_scores, reference=reference, stop=stop, scoring=scoring,
        label=label,
    )


    try:
        return asyncio.run(_stop_on_sigterm(work, run_dir))
    except KeyboardInterrupt:
        raise RunInterrupted(run_dir, "SIGINT") from None


def reference_for(config: RunConfig) -> ReferenceScores | None:
    """The recorded scores a run that replays a recorded run decides from (agent.reference)."""
    return load_reference(llm_spec(config), config.score_rtol)


async def _stop_on_sigterm(work: Coroutine[Any, Any, RunResult], run_dir: Path) -> RunResult:
    """Await `work`, cancelling it on SIGTERM as asyncio.run does on Ctrl-C."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    received: list[int] = []

    def on_sigterm() -> None:
        received.append(signal.SIGTERM)
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (thread, Windows)
        return await work
    try:
        return await work
    except asyncio.CancelledError:
        if received:
            raise RunInterrupted(run_dir, "SIGTERM") from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _best_event(run_dir: Path) -> Event | None:
    path = run_dir / BEST_FILE
    return Event.model_validate(read_json(path)) if path.exists() else None
