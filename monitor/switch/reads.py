"""Switch reads that answer within a deadline, from the last known state if they must.

The switch is on the path that decides whether an AI may act, so a read never waits for
the store longer than ``budget``: a state older than the service's ``read_ttl`` is read
again on a thread of this reader's own (one read per workflow at a time, whatever the
number of requests), and if that read has not answered within the budget, or the store is
unavailable, the answer is the last state this daemon saw, marked stale with its time.
The read goes on in the background and refreshes the cache when it answers. Only a
workflow this daemon has never seen (and no full read of the table covers) has nothing
to fall back on: that read waits for the store, which then answers or fails (503) within
the store's own timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, TypeVar

from monitor.store import StoreUnavailable
from monitor.switch.service import SwitchService
from monitor.switch.state import SwitchState

READ_BUDGET_S: Final = 0.025  # half the 50 ms a switch read promises, the rest is HTTP
ALL: Final = "\0all"  # the in-flight key of a full read (no workflow name has a NUL)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Freshness:
    """How current an answer is: ``stale`` answers come from memory, as of ``as_of``."""

    stale: bool
    as_of: float  # epoch seconds the state was read from the store

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.as_of)

    def fields(self) -> dict[str, bool | float]:
        """For a JSON answer."""
        return {"stale": self.stale, "as_of": round(self.as_of, 3)}

    def headers(self) -> dict[str, str]:
        """``X-Driftwarden-Stale: <age in seconds>`` on a stale answer."""
        return {"X-Driftwarden-Stale": f"{self.age():.1f}"} if self.stale else {}


@dataclass(frozen=True, slots=True)
class SwitchRead:
    state: SwitchState
    freshness: Freshness


@dataclass(frozen=True, slots=True)
class SwitchesRead:
    states: list[SwitchState]
    freshness: Freshness


@dataclass
class SwitchReader:
    service: SwitchService
    budget: float = READ_BUDGET_S
    workers: int = 4  # store reads of switches at once: a stuck store holds at most these
    _executor: ThreadPoolExecutor | None = field(default=None, repr=False)
    _inflight: dict[str, tuple[float, Future[object]]] = field(default_factory=dict, repr=False)

    async def one(self, workflow: str) -> SwitchRead:
        found = self.service.cached(workflow)
        if found is not None:
            return SwitchRead(found, Freshness(False, time.time()))
        future, wait = self._start(workflow, lambda: self.service.get(workflow))
        try:
            state = await _within(future, wait)
            return SwitchRead(_as(state, SwitchState), Freshness(False, time.time()))
        except (TimeoutError, StoreUnavailable):
            known = self.service.last_known(workflow)
            if known is None:
                raise_if_failed(future)
        if known is not None:
            return SwitchRead(known.state, Freshness(True, known.as_of))
        state = await _within(future, None)
        return SwitchRead(_as(state, SwitchState), Freshness(False, time.time()))

    async def every(self) -> SwitchesRead:
        found = self.service.cached_all()
        if found is not None:
            return SwitchesRead(found, Freshness(False, time.time()))
        future, wait = self._start(ALL, self.service.all)
        try:
            states = await _within(future, wait)
            return SwitchesRead(_as_list(states), Freshness(False, time.time()))
        except (TimeoutError, StoreUnavailable):
            known = self.service.last_known_all()
            if known is None:
                raise_if_failed(future)
        if known is not None:
            return SwitchesRead(known.states, Freshness(True, known.as_of))
        states = await _within(future, None)
        return SwitchesRead(_as_list(states), Freshness(False, time.time()))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _start(self, key: str, read: Callable[[], object]) -> tuple[Future[object], float]:
        """The read of ``key`` already waiting on the store, or a new one, and how long
        to wait for it: what is left of the budget since it started, so a read stuck on
        the store delays one request by the budget, not every request."""
        now = time.monotonic()
        running = self._inflight.get(key)
        if running is not None and not running[1].done():
            return running[1], max(0.0, self.budget - (now - running[0]))
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="switch-read")
        future = self._executor.submit(read)
        self._inflight[key] = (now, future)
        future.add_done_callback(lambda done: self._finished(key, done))
        return future, self.budget

    def _finished(self, key: str, done: Future[object]) -> None:
        running = self._inflight.get(key)
        if running is not None and running[1] is done:
            del self._inflight[key]


def raise_if_failed(future: Future[object]) -> None:
    """Re-raise the store's error of a finished read (nothing to fall back on)."""
    if future.done() and not future.cancelled():
        error = future.exception()
        if error is not None:
            raise error


async def _within(future: Future[object], seconds: float | None) -> object:
    """The read's result, waiting at most ``seconds`` (TimeoutError) without cancelling it."""
    waiting = asyncio.wrap_future(future)
    # a read abandoned here may fail later: take its error so asyncio does not log it
    waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
    return await asyncio.wait_for(asyncio.shield(waiting), seconds)


def _as(value: object, kind: type[T]) -> T:
    assert isinstance(value, kind)
    return value


def _as_list(value: object) -> list[SwitchState]:
    assert isinstance(value, list)
    return value
