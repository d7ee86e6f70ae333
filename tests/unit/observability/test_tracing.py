"""Tracing: free when off (nothing imported), one trace per job when on."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from reelfoundry.observability.tracing import Tracer, _trace_id


def test_off_by_default_imports_nothing_and_does_nothing() -> None:
    code = (
        "import sys, os; os.environ.pop('OTEL_EXPORTER_OTLP_ENDPOINT', None)\n"
        "from reelfoundry.observability.tracing import Tracer\n"
        "t = Tracer()\n"
        "with t.span('job.run', 'J'):\n    pass\n"
        "t.record('job.queue', 'J', __import__('datetime').datetime.now(), __import__('datetime').datetime.now())\n"
        "assert not t.enabled\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'loaded'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_each_jobs_stages_share_one_trace() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer = Tracer(exporter=exporter)
    t0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    tracer.record("job.queue", "JOB-A", t0, t0 + timedelta(seconds=2), model="builtin")
    with tracer.span("job.store", "JOB-A", bytes=123):
        pass
    tracer.record("job.queue", "JOB-B", t0, t0 + timedelta(seconds=1))
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["job.queue", "job.store", "job.queue"]
    a1, a2, b = spans
    assert a1.context.trace_id == a2.context.trace_id == _trace_id("JOB-A") != b.context.trace_id
    assert a1.attributes["reelfoundry.model"] == "builtin" and a2.attributes["reelfoundry.bytes"] == 123
    assert (a1.end_time - a1.start_time) == 2 * 10**9
    tracer.shutdown()
