"""OpenTelemetry spans per job stage, exported over OTLP/HTTP when an endpoint is configured.

Off by default, and then free: nothing from OpenTelemetry is imported and every call returns at once.
On (``REELFOUNDRY_OTLP_ENDPOINT`` or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``; needs the ``otel``
extra), each job is one trace whose id derives from the job id, so its stages line up across processes
and restarts: ``job.admit`` (API), ``job.queue`` (submission → a worker starts it), ``job.run`` (one per
attempt, on the device), ``job.store`` (output into storage and the database).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from reelfoundry.errors import ConfigurationError


def _trace_id(job_id: str) -> int:
    return int(hashlib.sha256(job_id.encode()).hexdigest()[:32], 16) or 1


class Tracer:
    """Job-stage spans; a no-op unless an OTLP endpoint is configured (or an exporter is given, in tests)."""

    def __init__(self, endpoint: str | None = None, exporter: Any = None) -> None:
        endpoint = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        self._tracer: Any = None
        if endpoint is None and exporter is None:
            return
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        except ImportError:
            raise ConfigurationError(
                "tracing is configured but OpenTelemetry is not installed: pip install 'reelfoundry[otel]'"
            ) from None
        from reelfoundry import __version__

        provider = TracerProvider(
            resource=Resource.create({"service.name": "reelfoundry", "service.version": __version__})
        )
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            url = endpoint.rstrip("/") + "/v1/traces" if endpoint and not endpoint.endswith("/v1/traces") else endpoint
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self._provider = provider
        self._tracer = provider.get_tracer("reelfoundry")

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded."""
        return self._tracer is not None

    def _parent(self, job_id: str) -> Any:
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        context = SpanContext(
            trace_id=_trace_id(job_id),
            span_id=int(hashlib.sha256(b"root" + job_id.encode()).hexdigest()[:16], 16) or 1,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        return trace.set_span_in_context(NonRecordingSpan(context))

    @contextlib.contextmanager
    def span(self, name: str, job_id: str, **attributes: Any) -> Iterator[None]:
        """Time the block as one stage of ``job_id``'s trace."""
        if self._tracer is None:
            yield
            return
        attrs = {
            "reelfoundry.job_id": job_id,
            **{f"reelfoundry.{k}": v for k, v in attributes.items() if v is not None},
        }
        with self._tracer.start_as_current_span(name, context=self._parent(job_id), attributes=attrs):
            yield

    def record(self, name: str, job_id: str, start: datetime, end: datetime, **attributes: Any) -> None:
        """A stage whose times are already known (e.g. the queue wait, or an attempt a worker timed)."""
        if self._tracer is None:
            return
        attrs = {
            "reelfoundry.job_id": job_id,
            **{f"reelfoundry.{k}": v for k, v in attributes.items() if v is not None},
        }
        span = self._tracer.start_span(
            name, context=self._parent(job_id), attributes=attrs, start_time=int(start.timestamp() * 1e9)
        )
        span.end(end_time=int(end.timestamp() * 1e9))

    def shutdown(self) -> None:
        """Flush what is buffered (at server stop)."""
        if self._tracer is not None:
            self._provider.shutdown()
