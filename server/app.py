"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

from mobile_api.router import router as mobile_router
from server.admin.router import router as admin_router
from server.api.headers import SecurityHeaders
from server.api.health import router as health_router
from server.api.limits import BodySizeLimit
from server.api.openapi import install_openapi
from server.core.config import Settings, get_settings
from server.core.errors import install_error_handlers
from server.delivery.service import Outbox
from server.presence.endpoints import router as events_router
from server.prompts.landing import router as landing_router
from server.runtime import Runtime, system_clock
from server.scheduler import start_scheduler
from server.sites.endpoints import router as enrol_router
from server.web.invite import router as web_router
from server.web.templating import STATIC_PATH, static_files


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = system_clock) -> FastAPI:
    """Build the app; the database engine and EID index are made in the lifespan, not at import."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, clock)
        app.state.runtime = runtime
        outbox = Outbox(settings, runtime.sessions, clock)
        outbox.start()  # before the first request: a prompt's commit wakes it
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
            outbox.stop()
            runtime.close()

    app = FastAPI(
        title="Nahbar",
        version="0.1.0",
        summary="Opt-in volunteer and donation prompts for charities, near their door.",
        lifespan=lifespan,
        # No OpenTelemetry here (logs are JSON lines): FastAPI's own checked for providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)  # outermost of ours: the 413 above gets nosniff too
    routers = (
        health_router,
        enrol_router,
        events_router,
        mobile_router,
        admin_router,
        landing_router,
        web_router,
    )
    for router in routers:
        app.include_router(router)
    app.mount(STATIC_PATH, static_files(), name="admin-static")
    return app
