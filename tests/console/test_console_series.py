"""The console's store reads answer the same on SQLite and PostgreSQL."""

from __future__ import annotations

from monitor.console.series import StepTotals, load_steps, load_version_history
from monitor.store import Store
from monitor.store import schema as t


def test_rollup_deltas_are_summed_per_step_on_both_stores(store: Store) -> None:
    rows = [
        # two deltas of one minute (before compaction), a second minute, another step
        {"workflow": "w", "signal": "edited", "bucket": 3_600, "count": 4, "successes": 1},
        {"workflow": "w", "signal": "edited", "bucket": 3_600, "count": 6, "successes": 2},
        {"workflow": "w", "signal": "edited", "bucket": 3_660, "count": 5, "successes": 5},
        {"workflow": "w", "signal": "edited", "bucket": 7_260, "count": 1, "successes": 0},
        {"workflow": "w", "signal": "latency_ms", "bucket": 3_600, "count": 2, "sum": 5.5},
        {"workflow": "other", "signal": "edited", "bucket": 3_600, "count": 9, "successes": 9},
        {"workflow": "w", "signal": "edited", "bucket": 60, "count": 9, "successes": 9},  # early
    ]
    with store.write() as conn:
        conn.execute(
            t.rollups.insert(),
            [
                {
                    "successes": 0,
                    "sum": 0.0,
                    "sumsq": 0.0,
                    "min": None,
                    "max": None,
                    **r,
                    "seq": i + 1,
                }
                for i, r in enumerate(rows)
            ],
        )
    got = load_steps(store, ["w"], ["edited"], 3_600, 10_800, 3_600)
    assert got == {("w", "edited"): {3_600: StepTotals(15, 8, 0.0), 7_200: StepTotals(1, 0, 0.0)}}
    every = load_steps(store, ["w", "other"], None, 3_600, 3_660, 60)
    assert every[("w", "latency_ms")] == {3_600: StepTotals(2, 0, 5.5)}
    assert every[("other", "edited")] == {3_600: StepTotals(9, 9, 0.0)}
    assert load_steps(store, [], None, 0, 10, 60) == {}


def test_version_history_is_oldest_first_on_both_stores(store: Store) -> None:
    with store.write() as conn:
        conn.execute(
            t.versions.insert(),
            [
                {
                    "workflow": "w",
                    "model": "m",
                    "model_version": "2",
                    "prompt_version": "v1",
                    "first_seen": 200.0,
                    "last_seen": 300.0,
                    "count": 3,
                },
                {
                    "workflow": "w",
                    "model": "m",
                    "model_version": "1",
                    "prompt_version": "",
                    "first_seen": 100.0,
                    "last_seen": 199.0,
                    "count": 3,
                },
                {
                    "workflow": "x",
                    "model": "m",
                    "model_version": "9",
                    "prompt_version": "",
                    "first_seen": 50.0,
                    "last_seen": 60.0,
                    "count": 1,
                },
            ],
        )
    assert [(v.label, v.first_seen) for v in load_version_history(store, "w")] == [
        ("m@1/-", 100.0),
        ("m@2/v1", 200.0),
    ]
