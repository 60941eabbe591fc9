"""Application factory: routers, the API's edge (docs/api.md), error handlers, lifespan.

Observability (docs/operations.md): logs, error reports and traces are configured for the process
here; every request gets an ID and is measured; `/metrics` is served as `METRICS` says.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.routing import APIRoute

from {{ cookiecutter.project_slug }}.db import database_lifespan
from {{ cookiecutter.project_slug }}.db.session import assert_function_scoped
from {{ cookiecutter.project_slug }}.edge.body import BodyLimitMiddleware
from {{ cookiecutter.project_slug }}.edge.keys import (
    API_KEY_HEADER,
    ApiKeyMiddleware,
    KeyRing,
)
from {{ cookiecutter.project_slug }}.edge.openapi import document_edge
from {{ cookiecutter.project_slug }}.edge.ratelimit import build_job_limiter
from {{ cookiecutter.project_slug }}.errors import install_error_handlers
from {{ cookiecutter.project_slug }}.health.router import router as health_router
from {{ cookiecutter.project_slug }}.jobs.router import router as jobs_router
from {{ cookiecutter.project_slug }}.observability import metrics, tracing
from {{ cookiecutter.project_slug }}.observability.context import REQUEST_ID_HEADER
from {{ cookiecutter.project_slug }}.observability.middleware import wrap_app
from {{ cookiecutter.project_slug }}.observability.process import setup_process
{%- if cookiecutter.include_pages %}
from {{ cookiecutter.project_slug }}.pages.router import router as pages_router
{%- endif %}
{%- if cookiecutter.include_places %}
from {{ cookiecutter.project_slug }}.places.router import router as places_router
{%- endif %}
from {{ cookiecutter.project_slug }}.profiles.router import router as profiles_router
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
    get_settings,
)
{%- if cookiecutter.include_sitemaps %}
from {{ cookiecutter.project_slug }}.sitemaps.router import router as sitemaps_router
{%- endif %}
from {{ cookiecutter.project_slug }}.worker import task_engine

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application; the engine is created at start-up and disposed at shutdown."""
    settings = settings or get_settings()
    setup_process(settings)
    keys = KeyRing.from_settings(settings)
    job_limiter = build_job_limiter(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert_function_scoped(app)  # again: routes may have been added since create_app
        if keys.required and not keys.digests:
            logger.error(
                "ENVIRONMENT=%s requires API keys and API_KEYS is empty: every request that "
                "changes data answers 503 until API_KEYS is set",
                settings.environment,
            )
        try:
            async with database_lifespan(settings) as engine, task_engine(settings) as enqueue:
                metrics.observe_pool(engine)
                tracing.instrument_engine(engine)
                app.state.enqueue = enqueue
                yield
        finally:
            if job_limiter is not None:
                await job_limiter.aclose()
            metrics.process_exiting()

    # The docs routes are added last (below): FastAPI adds them when it creates the app.
    app = FastAPI(
        title=settings.app_name, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.settings = settings
    # Inside CORS and trusted hosts (a refusal carries CORS headers; a wrong host is a 400 first),
    # outside routing: a mutating request under /api/ without a key is refused before its body
    # is read, on every path, including routes added later and unknown ones.
    app.add_middleware(ApiKeyMiddleware, keys=keys, router=app.router)
    app.state.key_ring = keys
    app.state.job_limiter = job_limiter
    # Every path under /api/ needs a key for any method but GET, HEAD and OPTIONS
    # (`ApiKeyMiddleware`); job submissions need one whatever the method (jobs.queue).
    # Routes are tried in the order they were added, and each one tried before the match costs
    # its match: the API's come first, then health probes, `/metrics` and the docs (trying
    # those first cost about 4 % of a `GET` by id, measured with the template's benchmarks).
    api_routers = [
        profiles_router,
        jobs_router,
{%- if cookiecutter.include_sitemaps %}
        sitemaps_router,
{%- endif %}
{%- if cookiecutter.include_places %}
        places_router,
{%- endif %}
{%- if cookiecutter.include_pages %}
        pages_router,
{%- endif %}
    ]
    for api_router in api_routers:
        add_routes(app, api_router, prefix="/api/v1")
    add_routes(app, health_router)
    if settings.metrics_mode != "off":
        app.add_route("/metrics", metrics.metrics_endpoint, ["GET"], include_in_schema=False)
    if settings.api_docs_served:
        app.openapi_url, app.docs_url, app.redoc_url = "/openapi.json", "/docs", "/redoc"
        app.setup()  # FastAPI's own: adds the routes of the URLs set
    install_error_handlers(app)
    assert_function_scoped(app)  # every router is included: refuse a request-scoped session
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", API_KEY_HEADER, REQUEST_ID_HEADER],
            expose_headers=["Retry-After", REQUEST_ID_HEADER],
        )
    if settings.trusted_hosts:  # a request for another host gets no further
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.trusted_hosts))
    # Outermost of ours, where FastAPI's `max_body_size` sits: only requests with a body pay.
    app.add_middleware(BodyLimitMiddleware, max_body_size=settings.max_body_bytes)
    document_edge(
        app,
        keys=keys,
        rate_limited=job_limiter is not None,
        trusted_hosts=bool(settings.trusted_hosts),
    )
    tracing.instrument_app(app)  # first: it expects Starlette's own outermost middleware
    wrap_app(app, measure=settings.metrics_mode != "off")  # outermost: IDs even on a 500
    return app


_ROUTE_OPTIONS = tuple(
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name not in ("self", "path", "endpoint", "route_class_override")
)
"""The options of a route that `APIRouter.add_api_route` takes (every one an `APIRoute` keeps)."""
_NO_LIFESPAN = type(APIRouter().lifespan_context)


def add_routes(app: FastAPI, router: APIRouter, *, prefix: str = "") -> None:
    """Add the routes of `router` to `app` one by one, as `include_router(router, prefix=...)`.

    FastAPI keeps an included router whole: a request tried against it matches the router's
    routes twice, once to choose the router and once inside it, which cost about 6 % of a
    `GET` by id (the template's benchmarks). A router of API routes only is copied route by route
    instead, each with every option it was declared with (its router's prefix, tags,
    dependencies and responses included), so the app matches its routes directly. A router
    with anything else (a router included into it, a mount, a lifespan or startup handlers) is
    included whole, as FastAPI does.
    """
    plain = (
        all(isinstance(route, APIRoute) for route in router.routes)
        and not (router.on_startup or router.on_shutdown)
        and isinstance(router.lifespan_context, _NO_LIFESPAN)
    )
    if not plain:
        app.include_router(router, prefix=prefix)
        return
    for route in router.routes:
        assert isinstance(route, APIRoute)
        app.router.add_api_route(
            prefix + route.path,
            route.endpoint,
            route_class_override=type(route),
            **{name: getattr(route, name) for name in _ROUTE_OPTIONS},
        )
