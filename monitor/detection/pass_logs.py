"""What the daemon logs about detection passes: one line per pass, counted by status, and
one INFO line for every finding that became critical (with its summary).

Kept out of ``monitor.detection.scheduler`` so the scheduler only wires them in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

import structlog
from sqlalchemy import select

from detectors.types import Finding, Status
from monitor.store import Store
from monitor.store import schema as t

log = structlog.get_logger(__name__)


def status_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Findings per status, every status named even at zero, so the pass line reads
    ``critical=1 warn=2 ok=40 unknown=5`` and ``critical=0`` can be grepped for.

    >>> status_counts([Finding("wf", "edited", "cusum", Status.WARN)])
    {'critical': 0, 'warn': 1, 'ok': 0, 'unknown': 0}
    """
    counts = dict.fromkeys((s.value for s in _ORDER), 0)
    for f in findings:
        counts[f.status.value] += 1
    return counts


_ORDER = (Status.CRITICAL, Status.WARN, Status.OK, Status.UNKNOWN)


def critical_log_listener(store: Store) -> Callable[[list[Finding], float], None]:
    """A ``Detection`` listener: one INFO line per finding that became critical in the
    pass just saved (workflow, signal, detector, summary, since, value, baseline).

    "Became" is read from the store rather than kept in memory: ``save_pass`` inserts a
    new current row, created at the pass time, exactly when a finding's status changes
    (and updates it in place while the status holds). So a restart or a change of leader
    neither repeats the line for an episode already critical nor misses one.
    """
    f_ = t.findings.c

    def listen(findings: list[Finding], now: float) -> None:
        if not any(f.status is Status.CRITICAL for f in findings):
            return  # the usual pass: no query
        try:
            with store.read() as conn:
                became = set(
                    conn.execute(
                        select(f_.workflow, f_.signal, f_.detector).where(
                            f_.current == 1,
                            f_.status == Status.CRITICAL.value,
                            f_.created_at == now,  # the same float save_pass wrote
                        )
                    ).tuples()
                )
        except Exception as err:  # a log line must never keep the policies from running
            log.warning("cannot tell which findings became critical", error=str(err))
            return
        for f in findings:
            if f.status is Status.CRITICAL and (f.workflow, f.signal, f.detector) in became:
                log.info(
                    "finding critical",
                    workflow=f.workflow,
                    signal=f.signal,
                    detector=f.detector,
                    summary=f.summary,
                    since=_rfc3339(f.since),
                    value=f.value,
                    baseline=f.baseline,
                    samples=f.samples,
                )

    return listen


def _rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    stamp = dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")
