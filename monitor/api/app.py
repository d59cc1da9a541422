"""The application factory: one FastAPI app over the services ``monitor.wiring`` builds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from fastapi import FastAPI

from monitor import __version__
from monitor.api import alertmanager, errors, findings, health, ingest, ofrep, otlp, switches
from monitor.api.guards import RequestGuard
from monitor.console import docs as offline_docs
from monitor.console import views as console
from monitor.settings import FileConfig, Settings
from monitor.store import Store
from monitor.telemetry.metrics import Metrics
from monitor.wiring import BackgroundTask, build_services


def create_app(
    settings: Settings,
    store: Store | None = None,
    metrics: Metrics | None = None,
    tasks: Sequence[BackgroundTask] = (),
    file_config: FileConfig | None = None,
) -> FastAPI:
    """Build the services once (``monitor.wiring.build_services``) and the app over them.

    ``tasks`` (``monitor.wiring.background_tasks``) run for the app's lifetime, after the
    services have started; ``file_config`` defaults to the file the settings name.
    """
    services = build_services(settings, store, metrics, file_config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.enter_context(services.running())
            for task in tasks:
                await stack.enter_async_context(task(services))
            yield

    app = FastAPI(
        title="driftwarden",
        version=__version__,
        summary="Monitoring, drift detection and kill switches for AI workflows",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc load their assets from a CDN: blank offline. The
        # console serves /docs from the swagger-ui-py package instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.state.ingest_limiter = anyio.CapacityLimiter(settings.ingest_concurrency)
    errors.install(app)
    app.add_middleware(RequestGuard)
    otlp.install(app, settings)
    for module in (health, ingest, findings, switches, ofrep, alertmanager):
        app.include_router(module.router)
    app.include_router(console.router)  # the web console at /
    app.include_router(offline_docs.router)
    return app
