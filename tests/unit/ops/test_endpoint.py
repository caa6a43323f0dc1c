"""The status endpoint's routing and documents, on a listener without sockets."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from tests.unit.ops.test_sweep_memory import bare
from trustwire.ops.endpoint import StatusEndpoint


def test_routes_and_documents() -> None:
    listener = bare()
    stats = listener.stats
    stats.accepted, stats.handshakes_ok, stats.bytes_in, stats.reloads_failed = 5, 4, 100, 1
    stats.refused_unauthenticated = 7
    stats.handshake_failures.update({"expired": 2})
    stats.observe_handshake(0.003)
    endpoint = StatusEndpoint(listener, "serve")
    code, kind, body = endpoint.route("/metrics")
    assert code == 200 and kind.startswith("text/plain")
    names = {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples
             if not s.labels.get("le")}
    assert names["trustwire_connections_accepted_total"] == 5
    assert names["trustwire_handshake_duration_seconds_count"] == 1
    refused = {s.labels["limit"]: s.value for f in text_string_to_metric_families(body.decode())
               for s in f.samples if s.name == "trustwire_connections_refused_total"}
    assert refused == {"max_connections": 0, "handshakes_per_source": 7, "handshakes_evicted": 0}
    code, _, body = endpoint.route("/status")
    document = json.loads(body)
    assert code == 200 and document["reloads"]["failed"] == 1 and document["connections"] == []
    assert document["stats"]["refused_unauthenticated"] == 7 and document["unauthenticated"] == 0
    assert document["admission_in_handshake"] is True  # the OpenSSL callbacks are in place
    assert endpoint.route("/healthz")[0] == 200
    listener.closing = True
    assert endpoint.route("/healthz")[0] == 503
    assert endpoint.route("/anything")[0] == 404
