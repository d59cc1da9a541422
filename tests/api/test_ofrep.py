"""OFREP through the official OpenFeature Python SDK and OFREP provider against a running
daemon; bulk evaluation's ETag / 304 through httpx."""

from __future__ import annotations

import uuid

import httpx
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from tests.support.switches import AUTH, READ, READ_AUTH


@pytest.fixture
def daemon(daemon: str) -> str:
    """The shared served app, with invoices in review and send_email disabled."""
    httpx.put(
        f"{daemon}/v1/switches/invoices",
        headers=AUTH,
        json={"mode": "review", "disable": ["send_email"], "reason": "edits up"},
    ).raise_for_status()
    return daemon


def sdk_client(url: str, token: str | None = READ) -> OpenFeatureClient:
    domain = f"dw-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    api.set_provider(OFREPProvider(url, headers_factory=lambda: headers, timeout=5.0), domain)
    return api.get_client(domain)


def test_sdk_reads_mode_and_actions_with_variant_and_reason(daemon: str) -> None:
    client = sdk_client(daemon)
    mode = client.get_string_details("invoices.mode", "auto")
    assert (mode.value, mode.variant, mode.reason, mode.error_code) == (
        "review",
        "review",
        Reason.STATIC,
        None,
    )
    assert mode.flag_metadata["version"] == 1
    email = client.get_boolean_details("invoices.action.send_email", True)
    assert (email.value, email.variant, email.reason) == (False, "disabled", Reason.DISABLED)
    crm = client.get_boolean_details("invoices.action.crm_write", False)
    assert (crm.value, crm.variant, crm.reason) == (True, "enabled", Reason.STATIC)


def test_sdk_with_a_context_and_no_targeting_key(daemon: str) -> None:
    client = sdk_client(daemon)
    ctx = EvaluationContext(attributes={"model": "gpt-4o"})  # no targetingKey
    assert client.get_string_value("invoices.mode", "auto", ctx) == "review"
    keyed = EvaluationContext(targeting_key="case-17")
    assert client.get_string_value("invoices.mode", "auto", keyed) == "review"


def test_unknown_workflow_evaluates_to_its_default_mode(daemon: str) -> None:
    details = sdk_client(daemon).get_string_details("support.v2.mode", "manual")
    assert (details.value, details.variant, details.reason) == ("auto", "auto", Reason.DEFAULT)


def test_malformed_key_is_flag_not_found_with_details(daemon: str) -> None:
    details = sdk_client(daemon).get_string_details("invoices", "auto")
    assert details.value == "auto"  # the code default
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert "<workflow>.mode" in (details.error_message or "")
    r = httpx.post(
        f"{daemon}/ofrep/v1/evaluate/flags/Invoices.mode", json={"context": {}}, headers=READ_AUTH
    )
    assert r.status_code == 404
    assert r.json()["errorCode"] == "FLAG_NOT_FOUND" and r.json()["key"] == "Invoices.mode"
    assert "<workflow>.mode" in r.json()["errorDetails"]


def test_read_token_is_required(daemon: str) -> None:
    details = sdk_client(daemon, token=None).get_string_details("invoices.mode", "manual")
    assert details.value == "manual" and details.error_code == ErrorCode.GENERAL
    assert details.error_message == "unauthorized"


def test_unparseable_body_is_a_parse_error(daemon: str) -> None:
    r = httpx.post(
        f"{daemon}/ofrep/v1/evaluate/flags/invoices.mode", content=b"{nope", headers=READ_AUTH
    )
    assert r.status_code == 400 and r.json()["errorCode"] == "PARSE_ERROR"
    r = httpx.post(
        f"{daemon}/ofrep/v1/evaluate/flags/invoices.mode", json={"context": 3}, headers=READ_AUTH
    )
    assert r.status_code == 400 and r.json()["errorCode"] == "INVALID_CONTEXT"


def test_bulk_evaluation_has_an_etag_and_answers_304_until_a_switch_changes(daemon: str) -> None:
    bulk = f"{daemon}/ofrep/v1/evaluate/flags"
    r = httpx.post(bulk, json={"context": {}}, headers=READ_AUTH)
    assert r.status_code == 200
    flags = {f["key"]: f for f in r.json()["flags"]}
    assert flags["invoices.mode"]["value"] == "review"
    assert flags["invoices.action.send_email"]["value"] is False
    assert all("variant" in f for f in flags.values())
    etag = r.headers["etag"]
    again = httpx.post(bulk, json={"context": {}}, headers={**READ_AUTH, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    httpx.put(
        f"{daemon}/v1/switches/invoices", headers=AUTH, json={"mode": "manual", "reason": "worse"}
    ).raise_for_status()
    changed = httpx.post(bulk, json={"context": {}}, headers={**READ_AUTH, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert {f["key"]: f["value"] for f in changed.json()["flags"]}["invoices.mode"] == "manual"


def test_bulk_context_workflow_narrows_to_that_workflow(daemon: str) -> None:
    r = httpx.post(
        f"{daemon}/ofrep/v1/evaluate/flags",
        json={"context": {"workflow": "crm"}},
        headers=READ_AUTH,
    )
    assert [(f["key"], f["value"], f["reason"]) for f in r.json()["flags"]] == [
        ("crm.mode", "auto", "DEFAULT")
    ]
