"""Metrics (Prometheus) and traces (OpenTelemetry, when configured)."""
