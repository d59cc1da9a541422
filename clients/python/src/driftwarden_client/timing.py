"""A context manager that times one workflow run and sends it as a ``run`` event.

    with events.run("invoices", model="gpt-4o-mini") as run:
        draft = ai_draft(case)
        run.update(groundedness=score(draft), input_tokens=usage.input)

On the way out it sets ``latency_ms`` (unless the workflow gave one) and, when the block
raised, ``status`` ``error`` (``timeout`` for a ``TimeoutError``) with the exception's type
in ``attributes["error.type"]`` (the OpenTelemetry name, which the daemon's OTLP mapping
reads too). The workflow's exception always propagates unchanged; a failure of the timer
itself is logged, never raised, so it can neither hide nor replace the workflow's own.
"""

from __future__ import annotations

import logging
import time
import uuid
from types import TracebackType
from typing import Literal, Protocol, Unpack

from driftwarden_client.events import RunFields

log = logging.getLogger("driftwarden_client")


class RunSink(Protocol):
    def send_run(self, workflow: str, **fields: Unpack[RunFields]) -> str | None: ...


class RunTimer:
    """One timed run; ``update`` adds fields the workflow learns while it runs."""

    def __init__(self, sink: RunSink, workflow: str, fields: RunFields) -> None:
        self._sink = sink
        self._workflow = workflow
        self._fields: RunFields = fields.copy()
        # known before the run ends, so the workflow can log it or pass it along
        self.id: str = str(self._fields.setdefault("id", str(uuid.uuid4())))
        self._started = time.perf_counter()

    def update(self, **fields: Unpack[RunFields]) -> None:
        self._fields.update(fields)

    def __enter__(self) -> RunTimer:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        try:
            self._send(exc)
        except Exception:
            log.warning("driftwarden: run of %s not recorded", self._workflow, exc_info=True)
        return False  # never swallow the workflow's exception

    async def __aenter__(self) -> RunTimer:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)

    def _send(self, exc: BaseException | None) -> None:
        fields = self._fields.copy()
        fields.setdefault("latency_ms", (time.perf_counter() - self._started) * 1000.0)
        if exc is not None:
            fields["status"] = "timeout" if isinstance(exc, TimeoutError) else "error"
            fields["attributes"] = {**fields.get("attributes", {}), "error.type": error_type(exc)}
        self._sink.send_run(self._workflow, **fields)


def error_type(exc: BaseException) -> str:
    """``ValueError`` for built-ins, ``package.module.Class`` otherwise (as OTel's error.type)."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
