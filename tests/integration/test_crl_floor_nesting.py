"""Seventh review: a floor file must never crash the build (the sixth review fixed a
TypeError; the same class remains for a file json.loads cannot decode without
exceeding the recursion limit: RecursionError is neither OSError nor ValueError, so
FloorStore.load lets it out of every build and every reload)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tests.integration.test_crl_intermediates import Pki, _open, _refused, _server
from trustwire.errors import ReloadError
from trustwire.ops.floors import FloorStore
from trustwire.ops.reload import TrustSource
from trustwire.tls.context import ServerTLS


def _source(pki: Pki, floors: Path) -> TrustSource:
    tls = ServerTLS(cert=pki.where / "server.crt", key=pki.where / "server.key",
                    ca=pki.where / "ca+ib.crt", crl=pki.where / "crl.pem")
    return TrustSource(tls=tls, floor_dir=floors)


def test_a_deeply_nested_floor_file_does_not_crash_the_build(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    pki.write_crls(pki.ib_crl(1))
    floors = tmp_path / "floors"
    _source(pki, floors).build()
    store = FloorStore(pki.where / "crl.pem", floors)
    assert store.path.exists()
    store.path.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with contextlib.suppress(ReloadError):  # a clear refusal would do; a RecursionError
        _source(pki, floors).build()        # is a crash


def test_a_deeply_nested_floor_file_does_not_hold_back_a_revocation(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    pki.write_crls(pki.ib_crl(1))
    with _server(pki, tmp_path, "ca+ib.crt") as st:
        store = FloorStore(pki.where / "crl.pem",
                           Path(os.environ["XDG_STATE_HOME"]) / "trustwire" / "crl-floors")
        assert store.path.exists()
        store.path.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
        pki.write_crls(pki.ib_crl(2, revoke=("carol",)))
        carol = pki.client("carol")
        _open(carol, st.port).close()

        def attempt() -> object:
            try:
                return st.server.reloader.reload("test")  # type: ignore[union-attr]
            except Exception as exc:
                return exc

        outcome = st.call(attempt)
        assert not isinstance(outcome, Exception), f"the reload crashed: {outcome!r}"
        assert "REVOKED" in _refused(carol, st.port).upper()
