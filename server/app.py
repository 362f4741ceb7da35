"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

import server.models  # noqa: F401 - every table, whatever the routers happen to import (as the CLI does)
from mobile_api.router import router as mobile_router
from server.admin.router import router as admin_router
from server.api.accesslog import AccessLog
from server.api.admission import Admission
from server.api.docs import router as docs_router
from server.api.headers import SecurityHeaders
from server.api.health import router as health_router
from server.api.home import router as home_router
from server.api.limits import BodySizeLimit
from server.api.metrics import router as metrics_router
from server.api.openapi import install_openapi
from server.core.config import Settings, get_settings
from server.core.errors import install_error_handlers
from server.delivery.providers import PushOffer
from server.delivery.service import Outbox
from server.impact.public_endpoints import router as impact_public_router
from server.presence.endpoints import router as events_router
from server.prompts.landing import router as landing_router
from server.runtime import Runtime, system_clock
from server.scheduler import start_scheduler
from server.sites.endpoints import router as enrol_router
from server.web.router import router as web_router
from server.web.templating import STATIC_PATH, static_files


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = system_clock) -> FastAPI:
    """Build the app; the database engine and EID index are made in the lifespan, not at import."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, clock)
        app.state.runtime = runtime
        outbox = Outbox(settings, runtime.sessions, clock)
        runtime.push = PushOffer.of(outbox.providers)
        outbox.start()  # before the first request: a prompt's commit wakes it
        if runtime.opt_in_notices is not None:
            runtime.opt_in_notices.start()
        scheduler = start_scheduler(runtime) if settings.scheduler_enabled else None
        # What exists now (the app, the models, the EID index) lives as long as the process: kept out of
        # the cyclic collector, whose full passes otherwise walked all of it and stopped every request for
        # up to 200 ms (measured at 60 prompts a second). Given back at shutdown, so an app built and dropped
        # (tests) leaves nothing uncollectable behind.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            if runtime.opt_in_notices is not None:
                runtime.opt_in_notices.stop()
            outbox.stop()
            runtime.close()

    app = FastAPI(
        title="Nahbar",
        version="0.1.0",
        summary="Opt-in volunteer and donation prompts for charities, near their door.",
        lifespan=lifespan,
        # /docs is server.api.docs: Swagger UI from this server, not a CDN. No ReDoc.
        docs_url=None,
        redoc_url=None,
        # No OpenTelemetry here (logs are JSON lines): FastAPI's own checked for providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_error_handlers(app)
    install_openapi(app)
    # Added first, so it runs inside the body limit: a body is capped before admission buffers it.
    app.add_middleware(
        Admission, slots=settings.max_concurrent_requests, wait_s=settings.request_queue_seconds
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)  # the 413 above gets nosniff too
    # Outermost, so that it logs what the client got, refusals of the size limit included.
    app.add_middleware(
        AccessLog,
        log_client_addresses=settings.log_client_addresses,
        trusted_proxies=settings.trusted_proxies,
    )
    routers = (
        health_router,
        enrol_router,
        events_router,
        mobile_router,
        admin_router,
        landing_router,
        web_router,
        impact_public_router,
        docs_router,
        home_router,
        metrics_router,
    )
    for router in routers:
        app.include_router(router)
    app.mount(STATIC_PATH, static_files(), name="admin-static")
    return app
