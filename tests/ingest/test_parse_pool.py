"""Parse processes: same batches as parsing in the server, and nothing lost when they fail."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from collectors.events import MAX_BATCH_EVENTS
from collectors.native import BatchError, Parsed, parse_batch
from monitor.batch.prepare import Prepared
from monitor.ingest.parse_pool import ParsePool
from tests.batch.test_prepare import T0, demo_body, derived
from tests.support.daemon import Daemon


def noisy_parse(body: bytes, received: float) -> Parsed:
    """A parser that writes to stdout in the worker, as careless library code might (from
    Python, and straight to file descriptor 1 as C code would)."""
    print("a stray line on stdout")
    os.write(1, b"and one from below Python\n")
    return parse_batch(body, "json", received)


@pytest.fixture
def pool() -> Iterator[ParsePool]:
    started = ParsePool(1)
    started.start()
    yield started
    started.close()


def as_compared(result: tuple[object, Prepared]) -> tuple[object, ...]:
    parsed, batch = result
    assert isinstance(parsed, Parsed)
    return (parsed.rejected, *derived(batch))


def test_a_parse_process_prepares_the_same_batch_as_the_server(pool: ParsePool) -> None:
    body, received = demo_body(), T0 + 3600
    in_process = ParsePool(0).call(received, parse_batch, (body, "json", received))
    in_worker = pool.call(received, parse_batch, (body, "json", received))
    assert as_compared(in_worker) == as_compared(in_process)
    parsed, batch = in_worker
    assert isinstance(parsed, Parsed)
    assert [r.index for r in parsed.rejected] == [3, 4]
    kinds = {row[1] for row in batch.rows}
    assert kinds == {"run", "review", "cost", "kpi"}
    assert len(batch.rows) > 500
    assert batch.in_batch_duplicates == 1
    assert batch.tally.sums["cost_unpriced", "in-house-7"] == 1
    assert ("billing", int(T0 // 86_400), "ana", "ops") in batch.actors


def test_an_error_in_a_parse_process_is_raised_as_in_the_server(pool: ParsePool) -> None:
    with pytest.raises(BatchError, match="not valid JSON") as bad:
        pool.call(T0, parse_batch, (b'[{"id": ', "json", T0))
    assert not bad.value.too_large
    too_many = orjson.dumps([{}] * (MAX_BATCH_EVENTS + 1))
    with pytest.raises(BatchError) as large:
        pool.call(T0, parse_batch, (too_many, "json", T0))
    assert large.value.too_large  # still a 413, not a 400
    # and the worker is still the same healthy process afterwards
    (pid,) = pool.pids()
    assert pool.call(T0, parse_batch, (b"[]", "json", T0))[1].rows == []
    assert pool.pids() == [pid]


def test_a_killed_parse_process_is_replaced_and_its_batch_still_parsed(pool: ParsePool) -> None:
    body, received = demo_body(5), T0 + 3600
    expected = as_compared(ParsePool(0).call(received, parse_batch, (body, "json", received)))
    (dead,) = pool.pids()
    os.kill(dead, signal.SIGKILL)
    os.waitpid(dead, 0)
    assert as_compared(pool.call(received, parse_batch, (body, "json", received))) == expected
    (fresh,) = pool.pids()
    assert fresh != dead
    assert as_compared(pool.call(received, parse_batch, (body, "json", received))) == expected
    assert pool.pids() == [fresh]  # the replacement did that one


def test_output_on_the_workers_stdout_does_not_break_the_stream(pool: ParsePool) -> None:
    body = demo_body(2)
    (pid,) = pool.pids()
    for _ in range(3):
        _, batch = pool.call(T0 + 3600, noisy_parse, (body, T0 + 3600))
        assert len(batch.rows) > 50
    assert pool.pids() == [pid]  # no frame was garbled, so the worker was never replaced


def test_after_close_batches_are_parsed_in_the_server(pool: ParsePool) -> None:
    (pid,) = pool.pids()
    pool.close()
    assert pool.pids() == []
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: the process has exited
    assert len(pool.call(T0 + 3600, parse_batch, (demo_body(2), "json", T0 + 3600))[1].rows) > 50


def children(pid: int) -> dict[int, str]:
    """Child processes and their command lines (started by any of the process's threads)."""
    found = [
        c for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()
    ]
    return {int(c): Path(f"/proc/{c}/cmdline").read_bytes().decode() for c in found}


def ingested_total(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("driftwarden_events_ingested_total{")
    )


def test_the_daemon_parses_in_a_process_and_survives_losing_it(tmp_path: Path) -> None:
    body = demo_body(10)
    with Daemon(f"sqlite:///{tmp_path / 'dw.db'}", log_path=tmp_path / "daemon.log") as daemon:
        assert daemon.proc is not None
        workers = [p for p, cmd in children(daemon.proc.pid).items() if "parse_worker" in cmd]
        assert len(workers) == 1  # the default: one parse process
        first = httpx.post(daemon.url + "/v1/events", content=body, timeout=30)
        assert first.status_code == 200
        accepted = first.json()["accepted"]
        assert accepted > 100 and first.json()["rejected_count"] == 2
        os.kill(workers[0], signal.SIGKILL)
        again = httpx.post(daemon.url + "/v1/events", content=body, timeout=30)
        assert again.status_code == 200
        assert (again.json()["accepted"], again.json()["duplicates"]) == (0, accepted + 1)
        metrics = httpx.get(daemon.url + "/metrics", timeout=10).text
        assert ingested_total(metrics) == accepted
        fresh = [p for p, cmd in children(daemon.proc.pid).items() if "parse_worker" in cmd]
        assert len(fresh) == 1 and fresh != workers
    assert "parse process died" in (tmp_path / "daemon.log").read_text()


def test_batches_are_still_parsed_when_no_new_process_can_start(
    pool: ParsePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_process() -> None:
        raise OSError("Resource temporarily unavailable")

    body, received = demo_body(2), T0 + 3600
    expected = as_compared(ParsePool(0).call(received, parse_batch, (body, "json", received)))
    (dead,) = pool.pids()
    os.kill(dead, signal.SIGKILL)
    os.waitpid(dead, 0)
    monkeypatch.setattr("monitor.ingest.parse_pool.Worker", no_process)
    for _ in range(2):  # the dead one stays, and each job fails over to this thread
        assert as_compared(pool.call(received, parse_batch, (body, "json", received))) == expected
    monkeypatch.undo()
    assert as_compared(pool.call(received, parse_batch, (body, "json", received))) == expected
    assert pool.pids() != [dead]  # replaced once processes can start again
