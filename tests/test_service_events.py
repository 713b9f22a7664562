"""The event stream's reader: whole lines only, offsets, logs taken in order, then `end`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from nasagent.agent.service.events import start_offset, stream


def line(iteration: int) -> str:
    return json.dumps({"iteration": iteration, "phase": "search"}) + "\n"


async def take(messages, count: int) -> list[str]:  # noqa: ANN001
    return [await asyncio.wait_for(anext(messages), 10) for _ in range(count)]


def test_a_comparison_streams_its_logs_in_order_and_never_half_a_line(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "events.jsonl", tmp_path / "b" / "events.jsonl"
    first.parent.mkdir()
    first.write_text(line(1) + line(2) + '{"iteration": 3, "pha')
    state: dict[str, str | None] = {"end": None}
    logs = [("llm/seed-0", first), ("random/seed-0", second)]

    async def scenario() -> list[str]:
        messages = stream(lambda: logs, lambda: state["end"], offset=1)
        seen = await take(messages, 1)  # line 0 is skipped, the torn line is not sent
        with first.open("a") as handle:
            handle.write('se": "search"}\n')
        second.parent.mkdir()
        second.write_text(line(1))
        seen += await take(messages, 2)
        state["end"] = json.dumps({"state": "finished"})
        return seen + [message async for message in messages]

    seen = asyncio.run(scenario())
    assert [m.split("\n")[0] for m in seen[:3]] == ["id: 1", "id: 2", "id: 3"]
    wrapped = [json.loads(m.split("data: ", 1)[1]) for m in seen[:3]]
    assert [w["run"] for w in wrapped] == ["llm/seed-0", "llm/seed-0", "random/seed-0"]
    assert [w["event"]["iteration"] for w in wrapped] == [2, 3, 1]
    assert seen[3].startswith("event: end\n") and len(seen) == 4


def test_last_event_id_wins_over_the_offset() -> None:
    assert start_offset(5, None) == 5
    assert start_offset(5, "9") == 10
    assert start_offset(0, "garbage") == 0
