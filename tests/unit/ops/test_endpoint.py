"""The status endpoint's routing and documents, on a listener without sockets."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from trustwire.observe.endpoint import StatusEndpoint
from trustwire.server.listener import Listener


def test_routes_and_documents() -> None:
    listener = Listener()
    listener.stats.update(accepted=5, handshakes_ok=4, bytes_in=100, reloads_failed=1)
    listener.handshake_failures.update({"expired": 2})
    listener.observe_handshake(0.003)
    endpoint = StatusEndpoint(listener, "serve")
    code, kind, body = endpoint.route("/metrics")
    assert code == 200 and kind.startswith("text/plain")
    names = {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples
             if not s.labels.get("le")}
    assert names["trustwire_connections_accepted_total"] == 5
    assert names["trustwire_handshake_duration_seconds_count"] == 1
    code, _, body = endpoint.route("/status")
    document = json.loads(body)
    assert code == 200 and document["reloads"]["failed"] == 1 and document["connections"] == []
    assert endpoint.route("/healthz")[0] == 200
    listener.closing = True
    assert endpoint.route("/healthz")[0] == 503
    assert endpoint.route("/anything")[0] == 404
