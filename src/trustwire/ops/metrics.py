"""Prometheus metrics for a listener, read at scrape time.

The listener keeps plain counters (:class:`trustwire.net.observer.Stats`); this
collector turns them into metric families only when Prometheus scrapes, so
serving a message costs no metric locking at all. Bytes and messages count
closed connections plus the live ones at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from trustwire.net.listener import Listener
from trustwire.net.observer import HANDSHAKE_BUCKETS

__all__ = ["ListenerCollector", "registry_for"]


class ListenerCollector:
    """Exposes one listener's counters as ``trustwire_*`` metrics."""

    def __init__(self, listener: Listener, role: str) -> None:
        self.listener = listener
        self.role = role

    def collect(self) -> Iterator[Metric]:
        listener = self.listener
        stats = listener.stats
        labels = ["role"]
        role = [self.role]

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(f"trustwire_{name}", doc, labels=labels)
            family.add_metric(role, value)
            return family

        yield counter("connections_accepted", "TCP connections accepted", stats.accepted)
        refused = CounterMetricFamily("trustwire_connections_refused",
                                      "Connections closed by limits, by limit",
                                      labels=["role", "limit"])
        refused.add_metric([self.role, "max_connections"], stats.refused)
        refused.add_metric([self.role, "handshakes_per_source"], stats.refused_unauthenticated)
        refused.add_metric([self.role, "handshakes_evicted"], stats.evicted)
        yield refused
        unauthenticated = GaugeMetricFamily("trustwire_unauthenticated_connections",
                                            "Connections still in their TLS handshake",
                                            labels=labels)
        unauthenticated.add_metric(role, len(listener.unauthenticated))
        yield unauthenticated
        yield counter("handshakes", "Completed TLS handshakes", stats.handshakes_ok)
        failures = CounterMetricFamily("trustwire_handshake_failures",
                                       "Failed TLS handshakes by diagnosis",
                                       labels=["role", "reason"])
        for reason, count in sorted(stats.handshake_failures.items()):
            failures.add_metric([self.role, reason], count)
        yield failures
        denied = CounterMetricFamily("trustwire_access_denied",
                                     "Verified identities refused, by kind",
                                     labels=["role", "reason"])
        denied.add_metric([self.role, "policy"], stats.access_denied)
        denied.add_metric([self.role, "revoked_live"], stats.sessions_revoked)
        denied.add_metric([self.role, "ticket"], stats.tickets_refused)
        yield denied
        active = GaugeMetricFamily("trustwire_active_connections", "Open connections",
                                   labels=labels)
        active.add_metric(role, len(listener.sessions))
        yield active
        live_in = live_out = live_messages = 0
        for session in list(listener.sessions):
            bytes_in, bytes_out, messages = session.live_bytes()
            live_in += bytes_in
            live_out += bytes_out
            live_messages += messages
        traffic = CounterMetricFamily("trustwire_bytes", "Application bytes by direction",
                                      labels=["role", "direction"])
        traffic.add_metric([self.role, "in"], stats.bytes_in + live_in)
        traffic.add_metric([self.role, "out"], stats.bytes_out + live_out)
        yield traffic
        yield counter("messages", "Messages received (serve)", stats.messages + live_messages)
        reloads = CounterMetricFamily("trustwire_reloads", "Reloads by result",
                                      labels=["role", "result"])
        reloads.add_metric([self.role, "ok"], stats.reloads_ok)
        reloads.add_metric([self.role, "failed"], stats.reloads_failed)
        yield reloads
        cumulative = 0
        buckets = []
        for bound, count in zip(HANDSHAKE_BUCKETS, stats.handshake_buckets, strict=False):
            cumulative += count
            buckets.append((str(bound), cumulative))
        cumulative += stats.handshake_buckets[-1]
        buckets.append(("+Inf", cumulative))
        histogram = HistogramMetricFamily("trustwire_handshake_duration_seconds",
                                          "TLS handshake duration", labels=labels)
        histogram.add_metric(role, buckets, sum_value=stats.handshake_seconds)
        yield histogram
        material = listener.material
        if material.certificate is not None:
            expiry = GaugeMetricFamily("trustwire_certificate_expiry_timestamp_seconds",
                                       "When this listener's certificate expires", labels=labels)
            expiry.add_metric(role, material.certificate.not_after.timestamp())
            yield expiry
        if material.crl is not None and material.crl.next_update is not None:
            crl = GaugeMetricFamily("trustwire_crl_next_update_timestamp_seconds",
                                    "When the loaded CRL must be replaced", labels=labels)
            crl.add_metric(role, material.crl.next_update.timestamp())
            yield crl
        uptime = GaugeMetricFamily("trustwire_uptime_seconds", "Seconds since start", labels=labels)
        uptime.add_metric(role, time.time() - listener.started)
        yield uptime


def registry_for(listener: Listener, role: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ListenerCollector(listener, role))
    return registry
