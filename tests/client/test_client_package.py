"""driftwarden-client (clients/python): the switch helper and the event sender, against a
real daemon (``driftwarden serve`` in a subprocess) and, for the faults a daemon cannot be
made to produce on demand, a small local HTTP stub."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from driftwarden_client import EventSender, SwitchClient
from driftwarden_client.delivery import backoff, retry_after
from driftwarden_client.events import FIELDS
from driftwarden_client.timing import RunTimer
from prometheus_client.parser import text_string_to_metric_families

from collectors import events as schema
from tests.support.daemon import Daemon, free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT_SRC = ROOT / "clients" / "python" / "src"
INGEST, READ, CONTROL = "ingest-secret", "read-secret", "control-secret"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    work = tmp_path_factory.mktemp("daemon")
    env = {
        "DRIFTWARDEN_INGEST_TOKENS": INGEST,
        "DRIFTWARDEN_READ_TOKENS": READ,
        "DRIFTWARDEN_CONTROL_TOKENS": CONTROL,
        "DRIFTWARDEN_DETECTION": "false",
    }
    with Daemon(f"sqlite:///{work / 'dw.db'}", env=env, log_path=work / "daemon.log") as d:
        yield d


def counter(url: str, name: str, **labels: str) -> float:
    """A counter's value on the daemon's /metrics (0 when the series does not exist yet)."""
    text = httpx.get(f"{url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# --- a stub daemon for fault injection


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False  # wait for Stub.release before answering


@dataclass
class Seen:
    at: float
    headers: dict[str, str]
    events: list[dict[str, object]]


class Stub:
    """Answers POST /v1/events from a script of replies (the last one repeats); a 200
    accepts the whole batch in the daemon's answer format."""

    def __init__(self, replies: list[Reply], port: int = 0) -> None:
        self.replies = replies
        self.seen: list[Seen] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                events = json.loads(raw)
                stub.seen.append(Seen(time.monotonic(), dict(self.headers), events))
                reply = stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                stub.arrived.set()
                if reply.hold:
                    stub.release.wait(10)
                body = b""
                if reply.status == 200:
                    answer = {"accepted": len(events), "duplicates": 0, "rejected": []}
                    body = json.dumps({**answer, "rejected_count": 0}).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def ids(self) -> list[list[object]]:
        return [[e["id"] for e in s.events] for s in self.seen]

    def __enter__(self) -> Stub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# --- the event sender against the real daemon


def test_events_of_every_type_arrive_and_are_counted(daemon: Daemon) -> None:
    wf = "client-all-types"
    with EventSender(daemon.url, INGEST, flush_interval=0.05) as events:
        events.send_run(
            wf,
            status="ok",
            latency_ms=840,
            model="gpt-4o-mini",
            groundedness=0.91,
            failed_checks=["totals"],
            validation="failed",
            attributes={"case": 17},
        )
        events.send_review(wf, "edited", before="Total: 1,200 EUR", after="Total: 1,250 EUR")
        events.send_cost(wf, provider="openai", model="gpt-4o-mini", input_tokens=812)
        events.send_kpi(wf, "invoices_closed", 3.0, unit="count")
        with events.run(wf, model="gpt-4o-mini") as run:
            run.update(groundedness=0.5, input_tokens=10)
        assert events.flush(10)
        stats = events.stats()
    assert (stats.accepted, stats.rejected, stats.failed, stats.dropped) == (5, 0, 0, 0)
    url = daemon.url
    ingested = "driftwarden_events_ingested_total"
    assert counter(url, ingested, workflow=wf, type="run") == 2
    for kind in ("review", "cost", "kpi"):
        assert counter(url, ingested, workflow=wf, type=kind) == 1


def test_rejected_events_are_counted_by_index_and_logged_with_their_field(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    wf = "client-rejections"
    with EventSender(daemon.url, INGEST, flush_interval=0.05) as events:
        events.send_run(wf, id="good-1")
        events.send_run(wf, id="bad-1", groundedness=1.5)
        events.send_run(wf, id="good-1")  # the same id again: a duplicate, not an error
        # a field the daemon does not know is left out (with a warning): the rest is stored
        events.send_run(wf, id="odd-1", no_such_field=1)  # type: ignore[call-arg]
        assert events.flush(10)
        stats = events.stats()
    assert (stats.accepted, stats.duplicates, stats.rejected, stats.retries) == (2, 1, 1, 0)
    warning = next(r.getMessage() for r in caplog.records if "bad-1" in r.getMessage())
    assert "groundedness" in warning
    assert any("no_such_field" in r.getMessage() for r in caplog.records)
    assert counter(daemon.url, "driftwarden_events_ingested_total", workflow=wf, type="run") == 2


def test_a_missing_or_wrong_token_is_not_retried(
    daemon: Daemon, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTWARDEN_TOKEN", raising=False)
    for token, status in ((None, "401"), ("wrong", "403")):
        with EventSender(daemon.url, token, flush_interval=0.01, backoff_base=0.01) as events:
            events.send_run("client-tokens")
            assert events.flush(10)
            stats = events.stats()
        assert (stats.accepted, stats.failed, stats.retries) == (0, 1, 0)
        assert any(status in r.getMessage() for r in caplog.records)


def test_url_and_token_come_from_the_environment(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTWARDEN_URL", daemon.url + "/")
    monkeypatch.setenv("DRIFTWARDEN_TOKEN", INGEST)
    with EventSender.from_env(flush_interval=0.01) as events:
        events.send_run("client-env")
        assert events.flush(10)
        assert events.stats().accepted == 1


def test_close_sends_what_is_queued_without_waiting_for_the_interval(daemon: Daemon) -> None:
    wf = "client-close"
    events = EventSender(daemon.url, INGEST, flush_interval=60.0)
    for _ in range(3):
        events.send_cost(wf, input_tokens=5, output_tokens=1, cost_usd=0.001)
    started = time.monotonic()
    assert events.close(timeout=10) is True
    assert time.monotonic() - started < 5
    assert counter(daemon.url, "driftwarden_events_ingested_total", workflow=wf, type="cost") == 3
    assert events.send_cost(wf) is None and events.stats().dropped == 1  # closed


def test_events_are_sent_at_interpreter_exit_without_close(daemon: Daemon) -> None:
    wf = "client-atexit"
    script = (
        "from driftwarden_client import EventSender\n"
        f"events = EventSender({daemon.url!r}, {INGEST!r}, flush_interval=60.0)\n"
        f"events.send_run({wf!r}, status='timeout')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(CLIENT_SRC)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=30)
    assert counter(daemon.url, "driftwarden_runs_total", workflow=wf, status="timeout") == 1


def test_the_run_timer_reports_errors_and_timeouts_and_reraises(daemon: Daemon) -> None:
    wf = "client-timer"
    with EventSender(daemon.url, INGEST, flush_interval=0.01) as events:
        with pytest.raises(KeyError) as raised, events.run(wf):
            raise KeyError("case-17")
        assert raised.value.args == ("case-17",)
        with pytest.raises(TimeoutError), events.run(wf):
            raise TimeoutError
        with events.run(wf):
            pass
        assert events.flush(10)
    for status in ("error", "timeout", "ok"):
        assert counter(daemon.url, "driftwarden_runs_total", workflow=wf, status=status) == 1


def test_the_client_sends_exactly_the_daemons_fields() -> None:
    # the schema lives in the daemon; the client names each field so a workflow's type
    # checker sees typos. This keeps the two equal as the schema grows.
    required = {"run": set(), "review": {"decision"}, "cost": set(), "kpi": {"name", "value"}}
    structs = {"run": schema.Run, "review": schema.Review, "cost": schema.Cost, "kpi": schema.Kpi}
    for kind, struct in structs.items():
        daemon_fields = set(struct.__struct_fields__) - {"workflow"}
        assert set(FIELDS[kind]) | required[kind] == daemon_fields, kind  # type: ignore[index]


def test_the_readme_example_runs_against_the_daemon(daemon: Daemon) -> None:
    readme = (ROOT / "clients" / "python" / "README.md").read_text()
    example = readme.split("## The lines a workflow needs", 1)[1].split("```python\n")[1]
    example = example.split("```", 1)[0].replace('"http://driftwarden:8000"', repr(daemon.url))
    example = example.replace('"<read token>"', repr(READ))
    example = example.replace('"<ingest token>"', repr(INGEST))
    example = example.replace('"invoices"', '"client-readme"')
    put_switch(daemon.url, "client-readme", mode="review")
    sent: list[object] = []

    @dataclass
    class Draft:
        text: str
        score: float = 0.9
        tokens_in: int = 120

    namespace: dict[str, object] = {
        "case": 17,
        "ai_draft": lambda case: Draft("Total: 1,200 EUR"),
        "queue_for_approval": lambda draft: Draft("Total: 1,250 EUR"),
        "hand_over_to_manual_process": lambda case: None,
        "send": sent.append,
    }
    body = "".join(f"    {line}\n" for line in example.splitlines())
    exec(f"def workflow():\n{body}    events.close()\n", namespace)
    namespace["workflow"]()  # type: ignore[operator]
    assert [d.text for d in sent] == ["Total: 1,250 EUR"]  # type: ignore[attr-defined]
    for kind in ("run", "review"):
        ingested = "driftwarden_events_ingested_total"
        assert counter(daemon.url, ingested, workflow="client-readme", type=kind) == 1
    assert counter(daemon.url, "driftwarden_reviews_total", workflow="client-readme") == 1


# --- the switch helper against the real daemon


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def put_switch(url: str, workflow: str, **body: object) -> None:
    httpx.put(
        f"{url}/v1/switches/{workflow}",
        headers={"Authorization": f"Bearer {CONTROL}"},
        json={"reason": "test", **body},
    ).raise_for_status()


def test_switch_reads_caches_for_ttl_and_answers_disabled_actions(daemon: Daemon) -> None:
    put_switch(daemon.url, "client-switch", mode="review", disable=["send_email"])
    clock = Clock()
    with SwitchClient(daemon.url, READ, ttl=5.0, clock=clock) as switch:
        view = switch.state("client-switch")
        assert (view.mode, view.disabled_actions, view.stale, view.origin) == (
            "review",
            ("send_email",),
            False,
            "live",
        )
        assert not switch.allowed("client-switch", "send_email")
        assert switch.allowed("client-switch", "crm_write")
        put_switch(daemon.url, "client-switch", mode="manual")
        clock.now += 4.9
        assert switch.state("client-switch").origin == "cache"
        assert switch.mode("client-switch") == "review"
        clock.now += 0.2
        assert switch.mode("client-switch") == "manual"
        assert not switch.allowed("client-switch", "crm_write")


def test_switch_uses_its_last_answer_then_fails_safe_when_the_daemon_is_gone(
    daemon: Daemon,
) -> None:
    put_switch(daemon.url, "client-stale", mode="manual")
    clock = Clock()
    switch = SwitchClient(daemon.url, READ, ttl=5.0, max_stale=60.0, clock=clock)
    assert switch.mode("client-stale") == "manual"
    switch.url = f"http://127.0.0.1:{free_port()}"  # the daemon is unreachable from now on
    clock.now += 30
    stale = switch.state("client-stale")
    assert (stale.mode, stale.stale, stale.origin) == ("manual", True, "cache")
    assert stale.error is not None and "unreachable" in stale.error
    clock.now += 31
    assert (switch.mode("client-stale"), switch.state("client-stale").origin) == (
        "review",
        "fallback",
    )
    strict = SwitchClient(switch.url, READ, fail_mode="manual", fail_allow_actions=False)
    assert (strict.mode("x"), strict.allowed("x", "send_email")) == ("manual", False)


def test_switch_fails_safe_on_error_answers_and_does_not_ask_again_before_ttl(
    daemon: Daemon,
) -> None:
    with SwitchClient(daemon.url, token="wrong") as switch:
        view = switch.state("client-switch")
        assert (view.mode, view.origin) == ("review", "fallback") and "403" in (view.error or "")
        assert switch.allowed("client-switch", "send_email")  # review: a person approves
    calls: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("down")

    clock = Clock()
    transport = httpx.MockTransport(down)
    switch = SwitchClient("http://x", transport=transport, ttl=5.0, clock=clock)
    for _ in range(10):
        switch.mode("invoices")
    clock.now += 5.1
    switch.mode("invoices")
    assert len(calls) == 2


# --- delivery faults, with the stub


@pytest.mark.parametrize("status", [429, 503])
def test_retry_waits_for_retry_after(status: int) -> None:
    replies = [Reply(status, {"Retry-After": "1"}), Reply()]
    with Stub(replies) as stub:
        events = EventSender(stub.url, flush_interval=0.01, backoff_base=0.001)
        events.send_run("wf", id="r1")
        assert events.flush(10)
        stats = events.stats()
        events.close()
    assert (stats.accepted, stats.retries, stats.failed) == (1, 1, 0)
    assert stub.ids() == [["r1"], ["r1"]]
    assert stub.seen[1].at - stub.seen[0].at >= 0.95


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after("7", now) == 7.0
    assert retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past: now
    assert retry_after("soon", now) is None and retry_after(None) is None


def test_backoff_is_exponential_capped_and_jittered() -> None:
    for attempt, bound in ((1, 0.5), (2, 1.0), (3, 2.0), (6, 10.0), (200, 10.0)):
        delays = [backoff(attempt, 0.5, 10.0) for _ in range(400)]
        assert all(0.0 <= d <= bound for d in delays)
        assert max(delays) > 0.8 * bound and min(delays) < 0.2 * bound  # spread, not fixed


def test_connection_refused_is_retried_until_the_daemon_is_there() -> None:
    port = free_port()
    events = EventSender(
        f"http://127.0.0.1:{port}",
        flush_interval=0.01,
        backoff_base=0.05,
        backoff_max=0.2,
        max_retries=100,
    )
    events.send_run("wf", id="early")
    wait_for(lambda: events.stats().retries >= 2)
    with Stub([Reply()], port=port) as stub:
        assert events.flush(10)
        assert stub.ids() == [["early"]]
    assert events.stats().accepted == 1
    events.close()


def test_retries_are_bounded_then_the_batch_is_counted_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Stub([Reply(502)]) as stub:
        events = EventSender(stub.url, flush_interval=0.01, max_retries=3, backoff_base=0.01)
        events.send_run("wf", id="r1")
        assert events.flush(10)
        stats = events.stats()
        events.close()
    assert (stats.failed, stats.retries, len(stub.seen)) == (1, 3, 4)
    assert any("502" in r.getMessage() for r in caplog.records)


def test_a_full_queue_drops_the_oldest_waiting_events_and_counts_them() -> None:
    with Stub([Reply(hold=True), Reply()]) as stub:
        events = EventSender(stub.url, "t0k", max_queue=3, flush_interval=0.0)
        events.send_run("wf", id="e0")
        assert stub.arrived.wait(10)  # e0 is being posted; the daemon is slow to answer
        for i in range(1, 6):
            events.send_run("wf", id=f"e{i}")
        stats = events.stats()
        assert (stats.queued, stats.in_flight, stats.dropped) == (3, 1, 2)
        stub.release.set()
        assert events.flush(10)
        assert events.close()
    assert stub.ids() == [["e0"], ["e3", "e4", "e5"]]
    assert stub.seen[0].headers["Authorization"] == "Bearer t0k"


def test_batches_respect_batch_size() -> None:
    with Stub([Reply(hold=True), Reply()]) as stub:
        events = EventSender(stub.url, batch_size=2, flush_interval=0.0)
        events.send_run("wf", id="e0")
        assert stub.arrived.wait(10)
        for i in range(1, 6):
            events.send_run("wf", id=f"e{i}")
        stub.release.set()
        assert events.close(10)
    assert stub.ids() == [["e0"], ["e1", "e2"], ["e3", "e4"], ["e5"]]


def test_the_run_timer_sends_latency_status_and_error_type() -> None:
    class WorkflowError(Exception):
        pass

    with Stub([Reply()]) as stub:
        with EventSender(stub.url, flush_interval=0.01) as events:
            with events.run("wf", model="m1") as run:
                time.sleep(0.05)
                run.update(groundedness=0.5)
            with pytest.raises(WorkflowError), events.run("wf", attributes={"case": 1}):
                raise WorkflowError
            assert events.flush(10)
        sent = [e for s in stub.seen for e in s.events]
    ok, failed = sent
    assert ok["id"] == run.id and ok["model"] == "m1" and ok["groundedness"] == 0.5
    assert "status" not in ok and 50 <= float(ok["latency_ms"]) < 5000  # type: ignore[arg-type]
    assert failed["status"] == "error"
    assert failed["attributes"] == {
        "case": 1,
        "error.type": f"{__name__}.test_the_run_timer_sends_latency_status_and_error_type"
        ".<locals>.WorkflowError",
    }


# --- never raises into the workflow


class BrokenSink:
    def send_run(self, workflow: str, **fields: object) -> str | None:
        raise RuntimeError("sender bug")


def test_the_run_timer_never_raises_its_own_error_nor_hides_the_workflows() -> None:
    with RunTimer(BrokenSink(), "wf", {}):
        pass
    error = ValueError("the workflow's")
    with pytest.raises(ValueError) as raised, RunTimer(BrokenSink(), "wf", {}):
        raise error
    assert raised.value is error


class Exploding(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


def test_nothing_raises_when_the_daemon_is_down_or_the_event_is_bad(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "driftwarden_client")
    dead = f"http://127.0.0.1:{free_port()}"
    events = EventSender(dead, timeout=0.2, max_retries=1, backoff_base=0.01, flush_interval=0)
    assert events.send_run("wf", latency_ms=1.0) is not None
    assert events.send_run("wf", attributes={"x": object()}) is None  # not JSON
    assert events.send_cost("wf", cost_usd=float("nan")) is None
    assert events.send_review("wf", "approved", after="x" * 70_000) is None  # > 64 KiB
    assert events.send_run("wf", attributes=Exploding()) is None  # a workflow's own bug
    with pytest.raises(ZeroDivisionError), events.run("wf"):
        1 / 0  # noqa: B018
    assert events.flush(10)
    started = time.monotonic()
    events.close(timeout=0.5)
    assert time.monotonic() - started < 3
    stats = events.stats()
    assert (stats.invalid, stats.failed, stats.accepted) == (4, 2, 0)
    assert any("not delivered" in r.getMessage() for r in caplog.records)


def test_close_gives_up_at_its_timeout_while_the_daemon_asks_to_wait() -> None:
    with Stub([Reply(503, {"Retry-After": "30"})]) as stub:
        events = EventSender(stub.url, flush_interval=0.0)
        events.send_run("wf")
        assert stub.arrived.wait(10)
        started = time.monotonic()
        assert events.close(timeout=1.0) is False
        assert time.monotonic() - started < 3
    assert events.stats().failed == 1


# --- the distribution alone


@pytest.mark.slow
def test_installs_alone_without_the_daemons_dependencies(tmp_path: Path, daemon: Daemon) -> None:
    put_switch(daemon.url, "client-venv", mode="manual")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # from a copy: an in-tree build would leave build/ behind, whose stale files a later
    # build can pick up
    source = shutil.copytree(
        ROOT / "clients" / "python",
        tmp_path / "src",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*_cache"),
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(source)], check=True, timeout=600
    )
    script = f"""
import importlib.resources, importlib.util, json
from driftwarden_client import EventSender, SwitchClient
missing = [m for m in ("numpy", "scipy", "fastapi", "sqlalchemy", "monitor")
           if importlib.util.find_spec(m) is None]
with SwitchClient({daemon.url!r}, {READ!r}) as switch:
    mode = switch.mode("client-venv")
fallback = SwitchClient("http://127.0.0.1:{free_port()}", timeout=0.2).mode("client-venv")
with EventSender({daemon.url!r}, {INGEST!r}) as events:
    events.send_run("client-venv")
    events.flush(10)
    accepted = events.stats().accepted
typed = importlib.resources.files("driftwarden_client").joinpath("py.typed").is_file()
print(json.dumps([missing, mode, fallback, accepted, typed]))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DRIFTWARDEN_TOKEN")}
    out = subprocess.run(
        [str(python), "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    missing, mode, fallback, accepted, typed = json.loads(out.stdout)
    assert missing == ["numpy", "scipy", "fastapi", "sqlalchemy", "monitor"]
    assert (mode, fallback, accepted, typed) == ("manual", "review", 1, True)
