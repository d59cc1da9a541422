"""Validation of canonical events: every rejection names its field."""

from __future__ import annotations

import json

import pytest

from collectors.events import (
    MAX_EVENT_BYTES,
    EventError,
    Review,
    Run,
    convert_event,
    decode_event,
)

NOW = 1_795_000_000.0


def ev(**fields: object) -> bytes:
    base: dict[str, object] = {"id": "e1", "type": "run", "workflow": "invoice-triage"}
    base.update(fields)
    return json.dumps(base).encode()


def error_field(raw: bytes) -> str:
    with pytest.raises(EventError) as info:
        decode_event(raw, NOW)
    return info.value.field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"workflow": "Invoice Triage"}, "workflow"),
        ({"id": ""}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"type": "trace"}, "type"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"groundedness": 1.5}, "groundedness"),
        ({"confidence": -0.1}, "confidence"),
        ({"input_tokens": -5}, "input_tokens"),
        ({"cost_usd": -0.01}, "cost_usd"),
        ({"status": "failed"}, "status"),
        ({"retries": "3"}, "retries"),
        ({"failed_checks": ["ok", 3]}, "failed_checks[1]"),
        ({"ts": "2026-11-23T09:00:00"}, "ts"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": 12}, "ts"),
        ({"latency": 5}, "latency"),
    ],
)
def test_invalid_run_names_the_field(fields: dict[str, object], field: str) -> None:
    assert error_field(ev(**fields)) == field


def test_missing_type_and_workflow_are_named() -> None:
    assert error_field(b'{"id": "a", "workflow": "w"}') == "type"
    assert error_field(b'{"id": "a", "type": "run"}') == "workflow"


def test_review_needs_a_decision() -> None:
    assert error_field(ev(type="review")) == "decision"


def test_timestamp_with_offset_is_converted_to_epoch() -> None:
    run = decode_event(ev(ts="2026-11-23T10:00:00+01:00"), NOW + 10**7)
    assert run.epoch == pytest.approx(1_795_424_400.0)


def test_missing_timestamp_defaults_to_receive_time() -> None:
    assert decode_event(ev(), NOW).epoch == NOW


def test_edit_ratio_is_computed_from_before_and_after_and_texts_are_dropped() -> None:
    raw = ev(
        type="review", decision="edited", before="Dear John, thanks", after="Dear Jon, thanks!"
    )
    review = decode_event(raw, NOW)
    assert isinstance(review, Review)
    # Levenshtein distance 2 over the longer text of 17 characters
    assert review.edit_ratio == pytest.approx(2 / 17)
    assert review.before is None and review.after is None


def test_given_edit_ratio_is_kept_even_with_texts() -> None:
    review = decode_event(
        ev(type="review", decision="edited", edit_ratio=0.5, before="a", after="b")
    )
    assert isinstance(review, Review) and review.edit_ratio == 0.5


def test_before_without_after_is_rejected() -> None:
    assert error_field(ev(type="review", decision="edited", before="x")) == "after"


def test_oversized_event_and_attributes_are_rejected() -> None:
    with pytest.raises(EventError, match="larger than"):
        decode_event(ev(attributes={"blob": "x" * MAX_EVENT_BYTES}), NOW)
    assert error_field(ev(attributes={"blob": "x" * 17_000})) == "attributes"


def test_kpi_value_must_be_finite() -> None:
    raw = ev(type="kpi", name="invoices_per_hour", value=1e308 * 10)
    assert error_field(raw.replace(b"Infinity", b"1e999")) == "value"


def test_deep_nesting_is_a_clear_error_not_a_crash() -> None:
    raw = ev()[:-1] + b', "attributes": ' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}"
    with pytest.raises(EventError):
        decode_event(raw, NOW)


def test_convert_event_applies_the_same_rules_to_dicts() -> None:
    run = convert_event({"id": "r", "type": "run", "workflow": "w", "status": "timeout"}, NOW)
    assert isinstance(run, Run) and run.status == "timeout"
    with pytest.raises(EventError) as info:
        convert_event({"id": "r", "type": "run", "workflow": "w", "retries": -1}, NOW)
    assert info.value.field == "retries"
    with pytest.raises(EventError):
        convert_event(["not", "an", "object"], NOW)
