"""Console sessions and CSRF: the signed cookie, its flags, and what each role may post.

Pure signing checks, then the real app in process (TestClient) for the cookie flags and
the refusals; tests/test_console_browser.py does the same through a real browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.console.auth import (
    COOKIE,
    MAX_AGE_S,
    Session,
    SessionKeys,
    keys_for,
    new_session,
    role_of,
    token_hash,
)
from monitor.settings import Settings
from monitor.store import Store
from monitor.store.migrate import upgrade

KEYS = SessionKeys(b"k" * 32)


def test_a_signed_session_reads_back_and_any_change_is_rejected() -> None:
    s = new_session("secret-token", now=1_000.0)
    signed = KEYS.sign(s)
    assert "secret-token" not in signed  # the cookie names the token by its hash only
    assert KEYS.verify(signed, now=1_001.0) == s
    payload, mac = signed.split(".")
    forged = Session(s.sid, token_hash("another-token"), s.issued)
    forged_payload = KEYS.sign(forged).split(".")[0]
    assert KEYS.verify(f"{forged_payload}.{mac}", now=1_001.0) is None  # payload swapped
    flipped = mac[:-1] + ("B" if mac.endswith("A") else "A")
    assert KEYS.verify(f"{payload}.{flipped}", now=1_001.0) is None
    assert SessionKeys(b"x" * 32).verify(signed, now=1_001.0) is None  # another key
    assert KEYS.verify(signed, now=1_000.0 + MAX_AGE_S + 1) is None  # expired
    for junk in ("", "abc", "a.b.c", "!!!.???"):
        assert KEYS.verify(junk, now=1_001.0) is None


def test_the_csrf_token_belongs_to_one_session() -> None:
    a, b = new_session(None, now=0.0), new_session(None, now=0.0)
    assert KEYS.csrf_ok(a, KEYS.csrf(a))
    assert not KEYS.csrf_ok(a, KEYS.csrf(b))
    assert not KEYS.csrf_ok(a, "")
    assert not KEYS.csrf_ok(a, None)
    assert not SessionKeys(b"x" * 32).csrf_ok(a, KEYS.csrf(a))


def test_roles_come_from_the_current_settings() -> None:
    settings = Settings(read_tokens=["r1"], control_tokens=["c1"], ingest_tokens=["i1"])
    assert role_of(settings, token_hash("c1")) == "control"
    assert role_of(settings, token_hash("r1")) == "read"
    assert role_of(settings, token_hash("i1")) is None  # ingest reads nothing
    assert role_of(settings, token_hash("nope")) is None
    assert role_of(settings, None) is None
    # a token removed from the configuration signs its sessions out
    assert role_of(Settings(read_tokens=["r1"]), token_hash("c1")) is None


def test_the_key_is_shared_by_replicas_and_changes_with_the_tokens() -> None:
    one, same = Settings(control_tokens=["c1"]), Settings(control_tokens=["c1"])
    assert keys_for(one).key == keys_for(same).key
    assert keys_for(one).key != keys_for(Settings(control_tokens=["c2"])).key
    assert keys_for(Settings(console_secret="s3cret")).key != keys_for(one).key


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'dw.db'}",
        read_tokens=["read-t"],
        control_tokens=["control-t"],
    )
    store = Store(settings.database_url)
    upgrade(store)
    with TestClient(create_app(settings, store)) as c:
        yield c
    store.dispose()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(client: TestClient, token: str) -> str:
    page = client.get("/sign-in")
    resp = client.post(
        "/sign-in",
        data={"csrf": csrf_of(page.text), "token": token, "next": "/workflows/w1"},
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/workflows/w1"
    return resp.headers["set-cookie"]


def test_the_session_cookie_is_httponly_and_samesite_strict(client: TestClient) -> None:
    cookie = sign_in(client, "control-t").lower()
    assert cookie.startswith(COOKIE + "=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


def test_reading_needs_a_sign_in_when_tokens_are_configured(client: TestClient) -> None:
    assert client.get("/").status_code == 401
    assert client.get("/workflows/w1").status_code == 401
    sign_in(client, "read-t")
    assert client.get("/").status_code == 200


def test_sign_in_refuses_a_wrong_token_and_a_missing_csrf(client: TestClient) -> None:
    page = client.get("/sign-in")
    wrong = client.post("/sign-in", data={"csrf": csrf_of(page.text), "token": "guess"})
    assert wrong.status_code == 401 and "not a read or control token" in wrong.text
    assert client.post("/sign-in", data={"token": "control-t"}).status_code == 403
    assert client.get("/").status_code == 401  # still not signed in


def change(client: TestClient, csrf: str | None, **extra: str) -> int:
    form = {"change": "mode", "mode": "review", "reason": "looks off", **extra}
    if csrf is not None:
        form["csrf"] = csrf
    return client.post("/workflows/w1/switch", data=form, follow_redirects=False).status_code


def test_only_a_control_session_with_its_csrf_token_changes_a_switch(client: TestClient) -> None:
    anonymous = csrf_of(client.get("/sign-in").text)
    assert change(client, anonymous) == 403
    sign_in(client, "read-t")
    assert change(client, csrf_of(client.get("/sign-in").text)) == 403
    sign_in(client, "control-t")
    fresh = csrf_of(client.get("/sign-in").text)
    assert change(client, None) == 403
    assert change(client, anonymous) == 403  # the CSRF of an earlier session
    headers = {"Authorization": "Bearer read-t"}
    assert client.get("/v1/switches/w1", headers=headers).json()["version"] == 0
    assert change(client, fresh, reason="  ") == 400  # a reason is required
    assert change(client, fresh, mode="sideways") == 400
    assert change(client, fresh) == 303
    switch = client.get("/v1/switches/w1", headers=headers).json()
    assert (switch["mode"], switch["source"], switch["reason"]) == ("review", "human", "looks off")
    # a stale page (it showed version 0) cannot overwrite the change made since
    assert change(client, fresh, mode="auto", version="0") == 412
    assert change(client, fresh, change="disable", action="crm_write", reason="bad writes") == 303
    assert client.get("/v1/switches/w1", headers=headers).json()["disabled_actions"] == [
        "crm_write"
    ]
