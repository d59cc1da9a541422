"""The workflow-side client: live reads, TTL cache, and failing safe when the daemon is down."""

from __future__ import annotations

import httpx
from driftwarden_client import SwitchClient

from monitor.store import Store
from tests.support.daemon import free_port
from tests.support.switches import AUTH, READ, make_app, serving


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def set_switch(url: str, **body: object) -> None:
    httpx.put(
        f"{url}/v1/switches/invoices", headers=AUTH, json={"reason": "test", **body}
    ).raise_for_status()


def test_reads_mode_and_allowed_actions_from_the_daemon(daemon: str) -> None:
    set_switch(daemon, mode="review", disable=["send_email"])
    with SwitchClient(daemon, READ) as client:
        view = client.state("invoices")
        assert (view.mode, view.disabled_actions, view.version, view.stale, view.origin) == (
            "review",
            ("send_email",),
            1,
            False,
            "live",
        )
        assert client.allowed("invoices", "send_email") is False
        assert client.allowed("invoices", "crm_write") is True
        assert client.mode("never-written") == "auto"


def test_answers_are_cached_for_ttl_then_revalidated(daemon: str) -> None:
    clock = Clock()
    with SwitchClient(daemon, READ, ttl=5.0, clock=clock) as client:
        assert client.mode("invoices") == "auto"
        set_switch(daemon, mode="manual")
        clock.now += 4.9
        cached = client.state("invoices")
        assert (cached.mode, cached.origin) == ("auto", "cache")
        clock.now += 0.2
        assert client.mode("invoices") == "manual"
        assert client.allowed("invoices", "anything") is False  # manual: AI is off


def test_daemon_down_fails_safe_to_review_and_never_raises() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with SwitchClient(dead, READ, timeout=0.5) as client:
        view = client.state("invoices")
        assert (view.mode, view.stale, view.origin) == ("review", True, "fallback")
        assert view.error is not None and "unreachable" in view.error
        assert client.allowed("invoices", "send_email") is True  # review: a person approves
    strict = SwitchClient(dead, READ, timeout=0.5, fail_mode="manual", fail_allow_actions=False)
    assert strict.mode("invoices") == "manual"
    assert strict.allowed("invoices", "send_email") is False


def test_daemon_down_uses_last_known_state_while_fresh_enough(sqlite_store: Store) -> None:
    clock = Clock()
    client = SwitchClient("http://unused", READ, ttl=5.0, max_stale=60.0, clock=clock)
    with serving(make_app(sqlite_store)) as url:
        set_switch(url, mode="manual")
        client.url = url
        assert client.mode("invoices") == "manual"
    # the daemon is gone now
    clock.now += 30
    stale = client.state("invoices")
    assert (stale.mode, stale.stale, stale.origin) == ("manual", True, "cache")
    clock.now += 31  # older than max_stale: the fail-safe
    assert client.state("invoices").origin == "fallback"
    assert client.mode("invoices") == "review"


def test_error_answers_and_garbage_fail_safe_too(daemon: str) -> None:
    with SwitchClient(daemon, token="wrong") as client:  # 403
        view = client.state("invoices")
        assert (view.mode, view.origin) == ("review", "fallback") and "403" in (view.error or "")
    garbage = httpx.MockTransport(lambda request: httpx.Response(200, json={"mode": "sideways"}))
    with SwitchClient("http://x", transport=garbage) as client:
        view = client.state("invoices")
        assert (view.mode, view.origin) == ("review", "fallback") and "sideways" in (
            view.error or ""
        )
    broken = httpx.MockTransport(lambda request: 1 / 0)  # type: ignore[arg-type]
    with SwitchClient("http://x", transport=broken) as client:
        assert client.mode("invoices") == "review"


def test_a_failure_is_not_retried_before_ttl() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("down")

    clock = Clock()
    client = SwitchClient("http://x", transport=httpx.MockTransport(handler), ttl=5.0, clock=clock)
    for _ in range(10):
        client.mode("invoices")
    assert len(calls) == 1
    clock.now += 5.1
    client.mode("invoices")
    assert len(calls) == 2
