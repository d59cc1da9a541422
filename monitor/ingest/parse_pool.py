"""Parsing ingest batches in separate processes, so the server's interpreter only writes.

Parsing, validation, rollups and metric counts are pure Python per event; in the server
process they hold the GIL that the HTTP handling and the database writer need too. The
pool sends a job (the raw body and which parser to use) to an idle ``parse_worker``
process and gets back the rows, rollups and counts, ready for ``Store.insert_prepared``.

Nothing is ever lost to the pool: a job is only a parse, acknowledged by no one until the
server has committed its result. A worker that dies is replaced and its job is parsed in
the server; a job that fails in a worker is parsed again in the server, which raises the
real error (400, 413, ...) exactly as without the pool. ``processes=0`` parses in a thread
of the server.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import structlog

from monitor.batch.prepare import Prepared
from monitor.ingest.parse_worker import HasEvents, parse_and_prepare, read_frame, write_frame

log = structlog.get_logger(__name__)

Parse = Callable[..., HasEvents]
Result = tuple[HasEvents, Prepared]
_ROOT = str(Path(__file__).resolve().parents[1])  # where the ``monitor`` package lives


class WorkerDied(Exception):
    pass


class Worker:
    """One ``python -m monitor.ingest.parse_worker`` process and its two pipes."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.ingest.parse_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def call(self, frame: bytes) -> tuple[bool, Any]:
        stdin, stdout = self._pipes()
        try:
            write_frame(stdin, frame)
            reply = read_frame(stdout)
        except (OSError, ValueError) as err:  # ValueError: a pipe closed by ``stop``
            raise WorkerDied(str(err)) from None
        if reply is None:
            raise WorkerDied(f"exit code {self.proc.poll()}")
        ok, value = pickle.loads(reply)
        return bool(ok), value

    def stop(self) -> None:
        stdin, _ = self._pipes()
        try:
            stdin.close()  # the worker's loop ends on end of input
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        return self.proc.stdin, self.proc.stdout


class ParsePool:
    """``processes`` parse processes.

    Example (no processes: the job runs in the calling thread):
        >>> from collectors.native import parse_batch
        >>> parsed, batch = ParsePool(0).call(1.0, parse_batch, (b'[]', "json", 1.0))
        >>> parsed.rejected, batch.rows
        ([], [])
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        self._workers: list[Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def call(
        self, received: float, parse: Parse, args: tuple[Any, ...], for_copy: bool = False
    ) -> Result:
        """``parse(*args)`` prepared for the store (``parse_worker.parse_and_prepare``)."""
        job = (received, parse, args, for_copy)
        if not self._started():
            return parse_and_prepare(*job)
        frame = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        worker = self._idle.get()
        try:
            ok, value = worker.call(frame)
        except WorkerDied as err:
            log.warning("parse process died; restarted, batch parsed in the server", error=str(err))
            worker = self._replace(worker)
            ok = False
        finally:
            self._idle.put(worker)
        if not ok:  # parsed again here: raises the same error the worker met, or succeeds
            return parse_and_prepare(*job)
        result: Result = value
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def start(self) -> None:
        """Start the processes (the app does, for its lifetime); until then, and after
        ``close``, jobs run in the calling thread."""
        with self._lock:
            if self._closed or self._workers or self.processes == 0:
                return
            self._workers = [Worker() for _ in range(self.processes)]
            for worker in self._workers:
                self._idle.put(worker)
        log.info("parse processes started", pids=self.pids())

    def _started(self) -> bool:
        return bool(self._workers)

    def _replace(self, dead: Worker) -> Worker:
        """A new process in place of ``dead``; ``dead`` itself (its next job fails over to
        the server the same way) while the pool is closing or no process can start."""
        dead.stop()
        if self._closed:
            return dead
        try:
            fresh = Worker()
        except OSError as err:
            log.error("cannot start a parse process; parsing in the server", error=str(err))
            return dead
        with self._lock:
            self._workers = [fresh if w is dead else w for w in self._workers]
        return fresh
