"""A real ``driftwarden serve`` at the HTTP edges: clients that hang up mid-upload, and
oversized request headers (431), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx

from monitor.api.guards import MAX_HEADER_BYTES
from monitor.store import Store
from tests.support.daemon import Daemon

ENV = {"DRIFTWARDEN_DETECTION": "false", "DRIFTWARDEN_LOG_LEVEL": "info"}


def hang_up_mid_upload(port: int, path: str, content_type: str) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Content-Length: 1000000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'[{"id": "e1", "type": "run", "workflow"')
        time.sleep(0.3)  # the server is now waiting for the rest of the body


def log_lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines()


def test_a_client_hanging_up_mid_upload_logs_no_error(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    with Daemon(store.url, env=ENV, log_path=log) as daemon:
        for path, kind in (("/v1/events", "application/json"), ("/v1/traces", "application/json")):
            hang_up_mid_upload(daemon.port, path, kind)
        time.sleep(0.5)
        ok = httpx.post(
            daemon.url + "/v1/events", json=[{"id": "e2", "type": "run", "workflow": "wf"}]
        )
        assert ok.status_code == 200
    lines = log_lines(log)
    assert not [line for line in lines if "Traceback" in line or line.startswith("ERROR")]
    assert not [line for line in lines if '"level": "error"' in line]
    gone = [json.loads(line) for line in lines if "disconnected" in line]
    assert len(gone) == 2, lines
    assert {g["level"] for g in gone} <= {"info", "warning"}
    assert {g["path"] for g in gone} == {"/v1/events", "/v1/traces"}


def test_request_headers_over_the_limit_get_431(store: Store, tmp_path: Path) -> None:
    with Daemon(store.url, env=ENV, log_path=tmp_path / "daemon.log") as daemon:
        big = {f"x-pad-{i}": "v" * 8000 for i in range(128)}  # 1 MiB of headers
        resp = httpx.get(daemon.url + "/healthz", headers=big)
        assert resp.status_code == 431, resp.text
        assert resp.json()["error"] == "headers_too_large"
        fits = {f"x-pad-{i}": "v" * 8000 for i in range(MAX_HEADER_BYTES // 8192 - 1)}
        assert httpx.get(daemon.url + "/healthz", headers=fits).status_code == 200
        # and the daemon serves the next request as before
        assert httpx.get(daemon.url + "/readyz").status_code == 200
