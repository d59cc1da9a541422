"""Helpers for the kill-switch tests: an app on a store, served by uvicorn in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from monitor.api.app import create_app
from monitor.settings import FileConfig, Settings
from monitor.store import Store
from monitor.telemetry.metrics import Metrics
from tests.support.daemon import free_port

CONTROL = "control-secret"
READ = "read-secret"
AUTH = {"Authorization": f"Bearer {CONTROL}"}
READ_AUTH = {"Authorization": f"Bearer {READ}"}


def make_app(store: Store, config: FileConfig | None = None, tokens: bool = True) -> FastAPI:
    settings = Settings(
        database_url=store.url,
        control_tokens=[CONTROL] if tokens else [],
        read_tokens=[READ] if tokens else [],
        detection=False,
    )
    return create_app(settings, store, Metrics(), file_config=config)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on a free loopback port in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def sample(app: object, name: str, labels: dict[str, str]) -> Any:
    """A metric's value as /metrics would show it (``app``: ``TestClient.app``)."""
    assert isinstance(app, FastAPI)
    return app.state.services.metrics.registry.get_sample_value(name, labels)
