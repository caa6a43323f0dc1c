"""Observability: the audit log (JSON lines) and Prometheus metrics."""
