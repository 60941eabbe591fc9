"""One call configures a process: the web app's and each task worker's.

Its observability (logs, error reports, traces) and its garbage collector.
"""

from __future__ import annotations

import gc

from {{ cookiecutter.project_slug }}.observability.errors import start_sentry
from {{ cookiecutter.project_slug }}.observability.logs import configure_logging
from {{ cookiecutter.project_slug }}.observability.tracing import start_tracing
from {{ cookiecutter.project_slug }}.settings import Settings

GC_YOUNG_THRESHOLD = 10_000
"""Allocations of container objects (net of those freed) that start a collection of the youngest
generation; CPython's default is 700 (2,000 from 3.13). A service with requests in flight keeps
more live objects than that at any moment, so the default collected every few requests and found
almost nothing to free: each collection traversed the in-flight requests' objects and moved them
to an older generation, to be traversed again there. Under `wrk -c64` against `GET` by id that
was about 400 collections and 0.36 s of every 5 s, some 140 µs of a request's 1.3-1.6 ms of CPU;
at 10,000, one collection in 5 s. Cyclic garbage waits longer for its collection: at most about
this many objects."""


def setup_process(settings: Settings) -> None:
    """Configure logging, error reports, (when `OTEL_EXPORTER_OTLP_ENDPOINT` is set) traces, and
    the garbage collector's youngest threshold (`GC_YOUNG_THRESHOLD`, never lowered)."""
    configure_logging(settings)
    start_sentry(settings)
    start_tracing(settings)
    young, middle, old = gc.get_threshold()
    if young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
