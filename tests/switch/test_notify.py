"""Webhook notifications against a real local HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.settings import FileConfig
from monitor.store import Store
from monitor.switch.notify import Notifier
from monitor.switch.service import SwitchService
from tests.support.switches import AUTH, make_app


@dataclass
class Receiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200
    hold: threading.Event | None = None  # block requests until set
    got: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = box[0]
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rec.got.set()
            if rec.hold is not None:
                rec.hold.wait(10)
            status = rec.statuses.pop(0) if rec.statuses else 200
            if status == 200:
                rec.bodies.append(json.loads(body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    if box[0].hold is not None:
        box[0].hold.set()
    server.shutdown()
    server.server_close()


def no_wait(_: float) -> bool:
    return False  # backoff without sleeping; stopping is never requested


def test_every_switch_change_posts_slack_text_and_structured_fields(
    sqlite_store: Store, receiver: Receiver
) -> None:
    config = FileConfig(notify_webhooks=[receiver.url])
    app = make_app(sqlite_store, config)
    with TestClient(app) as client:
        client.put(
            "/v1/switches/invoices",
            headers=AUTH,
            json={"mode": "review", "disable": ["send_email"], "reason": "edits up"},
        )
        client.put(
            "/v1/switches/invoices",
            headers=AUTH,  # no change: no message
            json={"mode": "review", "reason": "again"},
        )
        notifier: Notifier = app.state.services.notifier
        assert notifier.join(10)
    [msg] = receiver.bodies
    assert msg["text"].startswith("driftwarden: workflow `invoices` switched mode auto -> review")
    assert "disabled send_email" in msg["text"] and msg["text"].endswith("edits up")
    assert msg["before"] == {"mode": "auto", "disabled_actions": [], "version": 0}
    assert msg["after"] == {"mode": "review", "disabled_actions": ["send_email"], "version": 1}
    assert (msg["workflow"], msg["source"], msg["dry_run"]) == ("invoices", "human", False)
    assert msg["at"].endswith("Z")


def test_failing_webhook_is_retried_with_backoff(sqlite_store: Store, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    notifier = Notifier([receiver.url], attempts=4, sleep=no_wait).start()
    svc = SwitchService(sqlite_store, listeners=[notifier.on_change])
    svc.tighten("wf", mode="manual", actor="d", source="policy:p", reason="r")
    assert notifier.join(10)
    notifier.stop()
    assert len(receiver.bodies) == 1 and receiver.statuses == []
    assert (notifier.stats.sent, notifier.stats.failed) == (1, 0)


def test_webhook_that_never_works_is_given_up_after_the_attempts(
    sqlite_store: Store, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 3
    notifier = Notifier([receiver.url], attempts=3, sleep=no_wait).start()
    notifier.submit({"text": "x"})
    assert notifier.join(10)
    notifier.stop()
    assert (notifier.stats.sent, notifier.stats.failed, receiver.bodies) == (0, 1, [])


def test_a_hanging_webhook_never_blocks_a_switch_change(
    sqlite_store: Store, receiver: Receiver
) -> None:
    receiver.hold = threading.Event()
    notifier = Notifier([receiver.url], maxsize=2, timeout_s=30).start()
    svc = SwitchService(sqlite_store, listeners=[notifier.on_change])
    svc.tighten("wf", mode="review", actor="d", source="s", reason="first")
    assert receiver.got.wait(10)  # the worker is now stuck in the receiver
    for i in range(5):  # more changes than the queue holds
        svc.tighten("wf", disable=frozenset({f"a{i}"}), actor="d", source="s", reason=f"r{i}")
    # every change committed while the webhook hangs; the oldest queued messages dropped
    assert svc.get("wf").version == 6
    assert notifier.stats.dropped == 3
    receiver.hold.set()
    assert notifier.join(10)
    notifier.stop()
    assert [b["reason"] for b in receiver.bodies] == ["first", "r3", "r4"]


def test_policy_with_notify_false_and_duplicates_send_nothing(
    sqlite_store: Store, receiver: Receiver
) -> None:
    notifier = Notifier([receiver.url], sleep=no_wait).start()
    svc = SwitchService(sqlite_store, listeners=[notifier.on_change])
    svc.tighten("wf", mode="review", actor="d", source="policy:quiet", reason="r", notify=False)
    svc.tighten("wf2", mode="review", actor="d", source="alert:A", reason="r", dedup_key="k")
    svc.tighten("wf2", mode="review", actor="d", source="alert:A", reason="r", dedup_key="k")
    assert notifier.join(10)
    notifier.stop()
    assert [b["workflow"] for b in receiver.bodies] == ["wf2"]
