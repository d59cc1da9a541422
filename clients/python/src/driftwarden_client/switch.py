"""The switch helper: "what mode am I in?" and "may I run action X?".

Workflows install this package, not the daemon (it was ``monitor.client`` before).

    from driftwarden_client import SwitchClient

    switch = SwitchClient("http://127.0.0.1:8000", token="<read token>")
    if switch.mode("invoices") == "manual":
        ...  # hand the case to the manual process
    if switch.allowed("invoices", "send_email"):
        ...  # the AI may send it (in review mode a person approves the output first)

Reads never raise. Answers are cached for ``ttl`` seconds (one HTTP call per workflow
per ``ttl``, revalidated with ``If-None-Match``). When the daemon cannot be reached, or
answers with an error, the last known state is used if it is younger than ``max_stale``
(marked ``stale``); otherwise the configured fail-safe: mode ``review`` by default. After
a failure the daemon is not asked again for ``ttl`` seconds, so an outage costs a
workflow at most one ``timeout`` per ``ttl``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

Mode = Literal["auto", "review", "manual"]
Origin = Literal["live", "cache", "fallback"]
_MODES = ("auto", "review", "manual")


@dataclass(frozen=True, slots=True)
class SwitchView:
    """What the client knows about one workflow's switch."""

    workflow: str
    mode: Mode
    disabled_actions: tuple[str, ...] = ()
    version: int = 0
    stale: bool = False  # not confirmed by the daemon within ttl
    origin: Origin = "live"  # live answer, cached answer, or the fail-safe
    error: str | None = None  # why the daemon's answer was not used

    def allows(self, action: str) -> bool:
        return self.mode != "manual" and action not in self.disabled_actions


@dataclass
class _Entry:
    view: SwitchView
    etag: str | None
    confirmed_at: float  # last time the daemon confirmed it
    retry_at: float  # do not ask before this


@dataclass
class SwitchClient:
    """Switch reads with a TTL cache, a timeout and a fail-safe; never raises on a read."""

    url: str
    token: str | None = None
    ttl: float = 5.0
    timeout: float = 0.5
    fail_mode: Mode = "review"
    fail_allow_actions: bool = True  # in review mode a person still approves each output
    max_stale: float = 300.0
    transport: httpx.BaseTransport | None = None
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, _Entry] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_env(cls, **options: Any) -> SwitchClient:
        """``DRIFTWARDEN_URL`` (default http://127.0.0.1:8000) and ``DRIFTWARDEN_TOKEN``."""
        url = os.environ.get("DRIFTWARDEN_URL", "http://127.0.0.1:8000")
        return cls(url, os.environ.get("DRIFTWARDEN_TOKEN") or None, **options)

    def mode(self, workflow: str) -> Mode:
        return self.state(workflow).mode

    def allowed(self, workflow: str, action: str) -> bool:
        view = self.state(workflow)
        if view.origin == "fallback" and not self.fail_allow_actions:
            return False
        return view.allows(action)

    def state(self, workflow: str) -> SwitchView:
        try:
            return self._state(workflow)
        except Exception as err:
            log.exception("driftwarden switch read failed")
            return self._fallback(workflow, None, f"{type(err).__name__}: {err}")

    def _state(self, workflow: str) -> SwitchView:
        now = self.clock()
        with self._lock:
            entry = self._cache.get(workflow)
        if entry is not None and now < entry.retry_at:
            return entry.view
        view, etag, error = self._fetch(workflow, entry)
        now = self.clock()
        if view is None:
            view = self._fallback(workflow, entry, error or "no answer")
            with self._lock:
                confirmed = entry.confirmed_at if entry else float("-inf")
                self._cache[workflow] = _Entry(
                    view, entry.etag if entry else None, confirmed, now + self.ttl
                )
            return view
        with self._lock:
            self._cache[workflow] = _Entry(_cached(view), etag, now, now + self.ttl)
        return view

    def _fetch(
        self, workflow: str, entry: _Entry | None
    ) -> tuple[SwitchView | None, str | None, str | None]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if entry is not None and entry.etag and entry.view.origin != "fallback":
            headers["If-None-Match"] = entry.etag
        try:
            response = self._client().get(
                f"{self.url.rstrip('/')}/v1/switches/{quote(workflow, safe='')}", headers=headers
            )
        except httpx.HTTPError as err:
            return None, None, f"unreachable: {type(err).__name__}: {err}"
        if response.status_code == 304 and entry is not None:
            return _live(entry.view), entry.etag, None
        if response.status_code != 200:
            return None, None, f"HTTP {response.status_code}: {response.text[:200]}"
        try:
            body = response.json()
            mode = body["mode"]
            if mode not in _MODES:
                raise ValueError(f"unknown mode {mode!r}")
            view = SwitchView(
                workflow,
                mode,
                tuple(str(a) for a in body.get("disabled_actions", [])),
                int(body.get("version", 0)),
            )
        except (ValueError, KeyError, TypeError) as err:
            return None, None, f"bad answer: {err}"
        return view, response.headers.get("etag"), None

    def _fallback(self, workflow: str, entry: _Entry | None, error: str) -> SwitchView:
        now = self.clock()
        if (
            entry is not None
            and entry.view.origin != "fallback"
            and now - entry.confirmed_at <= self.max_stale
        ):
            v = entry.view
            return SwitchView(workflow, v.mode, v.disabled_actions, v.version, True, "cache", error)
        log.warning("driftwarden unreachable, failing safe to %s: %s", self.fail_mode, error)
        return SwitchView(workflow, self.fail_mode, (), 0, True, "fallback", error)

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout, transport=self.transport)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> SwitchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cached(view: SwitchView) -> SwitchView:
    return SwitchView(view.workflow, view.mode, view.disabled_actions, view.version, False, "cache")


def _live(view: SwitchView) -> SwitchView:
    return SwitchView(view.workflow, view.mode, view.disabled_actions, view.version, False, "live")
