"""Schemathesis against a real server on loopback: the service in a thread of its own (its own
event loop; schemathesis' engine is synchronous), and one bounded run of every check but
positive_data_acceptance (why: tests/http/test_schema_conformance.py), its failures as text
and the statuses each operation answered."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis import engine
from schemathesis.engine import events

from .api import ServiceServer


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` on ServiceServer (the service's own runner) in a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = ServiceServer(app)
    asyncio.run_coroutine_threadsafe(server.start_server(), loop).result(timeout=30)
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@dataclass
class Run:
    failures: list[str] = field(default_factory=list)  # check, operation, request, answer
    errors: list[str] = field(default_factory=list)  # schemathesis could not test something
    statuses: dict[str, Counter[int]] = field(default_factory=dict)  # operation -> answers

    def answered(self, operation: str, status: int) -> int:
        return self.statuses.get(operation, Counter())[status]


def run(
    base: str,
    key: str,
    paths: str,
    *,
    token: str | None = None,
    max_examples: int = 10,
) -> Run:
    """Every operation whose path matches the regex `paths`, called with `key` (Bearer) and
    the URL `token` where a path takes one: examples, coverage (boundaries, negative data,
    missing auth, other methods) and fuzzing phases, `max_examples` cases each."""
    config = schemathesis.Config.from_dict(
        {
            "base-url": base,
            "headers": {"Authorization": f"Bearer {key}"},
            "continue-on-failure": True,
            "request-timeout": 10,
            "generation": {"max-examples": max_examples, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            "checks": {"positive_data_acceptance": {"enabled": False}},
            **({"parameters": {"path.token": token}} if token else {}),
        }
    )
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=config)
    out = Run()
    for event in engine.from_schema(schema.include(path_regex=paths)).execute():
        if isinstance(event, events.NonFatalError | events.FatalError):
            value = getattr(event, "value", None) or getattr(event, "exception", None)
            out.errors.append(f"{getattr(event, 'label', '')}: {value!r}"[:500])
        if not isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            continue
        recorder = event.recorder
        counts = out.statuses.setdefault(recorder.label, Counter())
        for interaction in recorder.interactions.values():
            if interaction.response is not None:
                counts[interaction.response.status_code] += 1
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.failure_info is None:
                    continue
                out.failures.append(_describe(recorder, case_id, check))
    return out


def _describe(recorder: Any, case_id: str, check: Any) -> str:
    failure = check.failure_info.failure
    interaction = recorder.interactions.get(case_id)
    text = f"{check.name} on {recorder.label}: {failure.title}\n{failure.message[:300]}"
    if interaction is not None:
        request, response = interaction.request, interaction.response
        text += f"\n  sent {request.method} {request.uri} {(request.body or b'')[:200]!r}"
        if response is not None:
            text += f"\n  got {response.status_code} {(response.content or b'')[:200]!r}"
    return text
