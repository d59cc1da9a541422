"""The application factory: one FastAPI app wired to a store, metrics and settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI

from monitor import __version__
from monitor.alarm_budget import false_alarm_budgets
from monitor.api import alertmanager, errors, findings, health, ingest, ofrep, otlp, switches
from monitor.api.guards import RequestGuard
from monitor.api.switches import switch_hook
from monitor.console import docs as offline_docs
from monitor.console import views as console
from monitor.findings_metrics import FindingsCollector
from monitor.ingest import IngestService
from monitor.metrics import Metrics
from monitor.parse_pool import ParsePool
from monitor.settings import Settings
from monitor.store import Store

Hook = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def create_app(
    settings: Settings,
    store: Store | None = None,
    metrics: Metrics | None = None,
    hooks: list[Hook] | None = None,
) -> FastAPI:
    """Build the app. ``hooks`` are async context managers entered for the app's lifetime
    (the scheduler and the notifier use them), after the store is ready."""
    store = store or Store.from_settings(settings)
    metrics = metrics or Metrics(max_workflows=settings.max_workflows)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from contextlib import AsyncExitStack

        async with AsyncExitStack() as stack:
            app.state.ingest.parse_pool.start()
            stack.callback(app.state.ingest.parse_pool.close)
            await stack.enter_async_context(switch_hook(app))
            for hook in hooks or []:
                await stack.enter_async_context(hook(app))
            yield

    app = FastAPI(
        title="driftwarden",
        version=__version__,
        summary="Monitoring, drift detection and kill switches for AI workflows",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc load their assets from a CDN: blank offline. The
        # console serves /docs from the swagger-ui-bundle package instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.file_config = settings.load_file()
    app.state.store = store
    app.state.metrics = metrics
    app.state.ingest = IngestService(store, metrics, ParsePool(settings.parse_processes))
    app.state.ingest_limiter = anyio.CapacityLimiter(settings.ingest_concurrency)
    budgets = {
        wf: cfg.monthly_budget_usd
        for wf, cfg in app.state.file_config.workflows.items()
        if cfg.monthly_budget_usd
    }
    metrics.registry.register(
        FindingsCollector(
            store,
            budgets,
            lambda seen: false_alarm_budgets(app.state.settings, app.state.file_config, seen),
        )
    )
    errors.install(app)
    app.add_middleware(RequestGuard)
    app.include_router(health.router)
    app.include_router(ingest.router)
    for module in (otlp, findings, switches, ofrep, alertmanager):
        app.include_router(module.router)
    app.include_router(console.router)  # the web console at /
    app.include_router(offline_docs.router)
    return app
