"""Kill-switch values and the rules for changing them (pure: no I/O).

A switch is a workflow's ``mode`` (auto: the AI acts; review: a human approves every
output; manual: the AI is off) plus a set of disabled actions. Automation may only make
it safer (``tightened``); a human may move it either way (``human_target``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

Mode = Literal["auto", "review", "manual"]
MODES: Final[tuple[Mode, ...]] = ("auto", "review", "manual")
SAFETY: Final[dict[str, int]] = {"auto": 0, "review": 1, "manual": 2}
ACTION_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HUMAN: Final = "human"


@dataclass(frozen=True, slots=True)
class SwitchState:
    workflow: str
    mode: Mode
    disabled_actions: tuple[str, ...] = ()
    version: int = 0  # 0 = never written: the configured default
    reason: str = ""
    updated_by: str = ""
    updated_at: float | None = None
    source: str = "default"

    @classmethod
    def from_row(cls, row: Any) -> SwitchState:
        """From a ``switches`` row (a mapping)."""
        return cls(
            workflow=row["workflow"],
            mode=row["mode"],
            disabled_actions=tuple(json.loads(row["disabled_actions"] or "[]")),
            version=int(row["version"]),
            reason=row["reason"],
            updated_by=row["updated_by"],
            updated_at=row["updated_at"],
            source=row["source"],
        )

    def allows(self, action: str) -> bool:
        """May the workflow's AI run ``action`` by itself? Not in manual mode, not if disabled."""
        return self.mode != "manual" and action not in self.disabled_actions

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def snapshot(self) -> dict[str, Any]:
        """What the audit log keeps as before/after."""
        return {
            "mode": self.mode,
            "disabled_actions": list(self.disabled_actions),
            "version": self.version,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "mode": self.mode,
            "disabled_actions": list(self.disabled_actions),
            "version": self.version,
            "reason": self.reason,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Wanted:
    """A requested change. ``disabled_actions`` replaces the set; ``disable``/``enable``
    edit it (so two people disabling different actions never undo each other)."""

    mode: Mode | None = None
    disabled_actions: frozenset[str] | None = None
    disable: frozenset[str] = frozenset()
    enable: frozenset[str] = frozenset()


def human_target(state: SwitchState, wanted: Wanted) -> tuple[Mode, tuple[str, ...]]:
    """A human may move either way."""
    actions = set(
        state.disabled_actions if wanted.disabled_actions is None else wanted.disabled_actions
    )
    actions = (actions | wanted.disable) - wanted.enable
    return (wanted.mode or state.mode), tuple(sorted(actions))


def tightened(
    state: SwitchState, mode: Mode | None, disable: frozenset[str]
) -> tuple[Mode, tuple[str, ...]]:
    """Automation's target: the safer of current and asked mode, the union of disabled
    actions. It can never loosen anything.

    >>> s = SwitchState("w", "manual", ("a",))
    >>> tightened(s, "review", frozenset({"b"}))
    ('manual', ('a', 'b'))
    """
    new_mode = state.mode
    if mode is not None and SAFETY[mode] > SAFETY[state.mode]:
        new_mode = mode
    return new_mode, tuple(sorted(set(state.disabled_actions) | disable))


@dataclass(frozen=True, slots=True)
class ChangeResult:
    before: SwitchState
    after: SwitchState  # the persisted state (for a dry run: unchanged)
    proposed: SwitchState  # what the change asked for (for a dry run: what it would be)
    changed: bool
    actor: str = ""
    source: str = ""
    reason: str = ""
    dry_run: bool = False
    duplicate: bool = False  # the dedup_key was already recorded: nothing done
    audit_id: int | None = None
    notify: bool = True  # a policy can opt out of notifications

    @property
    def would_change(self) -> bool:
        """The asked-for state differs from the one before (true for a tripping dry run)."""
        p, b = self.proposed, self.before
        return (p.mode, p.disabled_actions) != (b.mode, b.disabled_actions)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    workflow: str
    at: float
    actor: str
    source: str
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]
    dry_run: bool
    dedup_key: str | None = None

    @classmethod
    def from_row(cls, r: Any) -> AuditEntry:
        """From an ``audit`` row (a mapping)."""
        return cls(
            r["id"],
            r["workflow"],
            r["at"],
            r["actor"],
            r["source"],
            r["reason"],
            json.loads(r["before"]),
            json.loads(r["after"]),
            bool(r["dry_run"]),
            r["dedup_key"],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "at": self.at,
            "actor": self.actor,
            "source": self.source,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
            "dry_run": self.dry_run,
            "dedup_key": self.dedup_key,
        }


class VersionConflict(Exception):
    """If-Match named a version that is no longer current."""

    def __init__(self, workflow: str, expected: int, current: SwitchState) -> None:
        super().__init__(f"{workflow}: expected version {expected}, current is {current.version}")
        self.expected = expected
        self.current = current
