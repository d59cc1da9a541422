"""One ``POST /v1/events`` and what it means for the batch: stored, retry later, or give up.

The daemon answers 200 once the batch is committed, with the count of new events, of
duplicates (ids it already had, which makes a retry after a lost answer safe) and the bad
events by index; a bad event is not retried, it would be refused again. 429 and 503 come
with ``Retry-After``; those, the other transient statuses and transport errors are retried.
Anything else (401/403 wrong token, 400, 413, 415) would fail the same way again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

RETRYABLE_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S: Final = 3600.0  # a header asking for longer is read as an hour


@dataclass(frozen=True, slots=True)
class Rejection:
    """One event the daemon refused: its index in the batch and the field it names."""

    index: int
    field: str
    error: str


@dataclass(frozen=True, slots=True)
class Answer:
    """The daemon's 200 answer to a batch."""

    accepted: int
    duplicates: int
    rejected: tuple[Rejection, ...]  # at most the first 1000
    rejected_count: int


@dataclass(frozen=True, slots=True)
class Outcome:
    answer: Answer | None = None  # set when the batch was stored
    retry: bool = False
    retry_after: float | None = None  # seconds, from the answer's Retry-After
    error: str = ""


def post_batch(
    http: httpx.Client, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> Outcome:
    try:
        response = http.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as err:  # refused, reset, timed out: the batch may be retried
        return Outcome(retry=True, error=f"{type(err).__name__}: {err}")
    if response.status_code == 200:
        try:
            return Outcome(answer=parse_answer(response.json()))
        except (ValueError, KeyError, TypeError) as err:
            return Outcome(error=f"unexpected answer: {err}: {response.text[:200]}")
    return Outcome(
        retry=response.status_code in RETRYABLE_STATUSES,
        retry_after=retry_after(response.headers.get("retry-after")),
        error=f"HTTP {response.status_code}: {response.text[:200]}",
    )


def parse_answer(body: object) -> Answer:
    if not isinstance(body, dict):
        raise TypeError(f"expected an object, got {type(body).__name__}")
    rejected = tuple(
        Rejection(int(r["index"]), str(r.get("field", "")), str(r.get("error", "")))
        for r in body.get("rejected", [])
    )
    return Answer(
        int(body["accepted"]),
        int(body.get("duplicates", 0)),
        rejected,
        int(body.get("rejected_count", len(rejected))),
    )


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))].

    Jitter keeps many workflows that lost the daemon at the same moment from coming back
    at the same moment.
    """
    return random.uniform(0.0, min(cap, base * 2.0 ** min(attempt - 1, 60)))
