"""The error hierarchy: data survives pickling, exit codes, the abstract ProtocolError."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from trustwire.errors import (
    AccessDenied,
    ConfigError,
    Diagnosis,
    FrameTooLarge,
    HandshakeError,
    ProtocolError,
    ReloadError,
    TLSError,
    TrustwireError,
    Unreachable,
)
from trustwire.identity import PeerIdentity

DIAGNOSIS = Diagnosis(reason="policy-denied", side="server", what="this client's identity",
                      why="CN=eve is not allowed by the access policy", fix="ask the operator")
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PEER = PeerIdentity(common_name="eve", organizational_units=(), dns=(), ips=(), uris=(), serial=7,
                    fingerprint="ab" * 32, not_before=NOW, not_after=NOW, issuer="CN=CA")


@pytest.mark.parametrize("error", [
    TrustwireError("plain", hint="do this"),
    ConfigError("bad flag", hint="see --help"),
    HandshakeError(DIAGNOSIS),
    AccessDenied(DIAGNOSIS, reason="access denied: CN=eve", peer=PEER),
    FrameTooLarge(5000, 1000),
    ReloadError("the CRL is older", hint="regenerate it"),
    Unreachable("no answer"),
])
def test_errors_survive_pickling_with_their_data(error: TrustwireError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error) and copy.args == error.args


def test_access_denied_is_a_handshake_refusal() -> None:
    error = AccessDenied(DIAGNOSIS, reason="access denied: CN=eve", peer=PEER)
    assert isinstance(error, HandshakeError) and error.diagnosis is DIAGNOSIS
    assert error.peer is PEER and error.exit_code == 1
    assert issubclass(ReloadError, TLSError)
    assert Unreachable("x").exit_code == 2 and ConfigError("x").exit_code == 2


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        ProtocolError("x")
