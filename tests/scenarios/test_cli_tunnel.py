"""`trustwire tunnel` bad input: one sentence, exit 2, nothing started."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import CliResult, Pki
from tests.scenarios.helpers import assert_clean_error

Cli = Callable[..., CliResult]


@pytest.mark.parametrize(("args", "fragment"), [
    (["client", "--listen", "0.0.0.0:9", "--target", "localhost:1", "--identity", "alice"],
     "not a loopback address"),
    (["client", "--listen", "192.0.2.1:9", "--target", "localhost:1", "--identity", "alice"],
     "add --unsafe-listen if that is intended"),
    (["client", "--listen", "127.0.0.1:0", "--target", "/run/x.sock", "--identity", "alice"],
     "connects over TCP"),
    (["client", "--listen", "127.0.0.1:0", "--target", "localhost", "--identity", "alice"],
     "is not HOST:PORT"),
    (["server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:0", "--identity", "server"],
     "needs a host and a non-zero port"),
    (["server", "--listen", "127.0.0.1:0", "--target", ":80", "--identity", "server"],
     "needs a host and a non-zero port"),
    (["server", "--listen", "127.0.0.1:0", "--identity", "server"], "Missing option '--target'"),
    (["server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:80"],
     "give --identity NAME, or --cert FILE and --key FILE"),
    (["client", "--listen", "127.0.0.1:0", "--target", "localhost:80"],
     "give --identity NAME, or --ca FILE"),
])
def test_tunnel_bad_input(pki: Pki, cli: Cli, args: list[str], fragment: str) -> None:
    assert_clean_error(cli("--home", pki.home.root, "tunnel", *args), 2, fragment)


def test_tunnel_help(cli: Cli) -> None:
    for mode in ("server", "client"):
        result = cli("tunnel", mode, "--help")
        assert result.code == 0 and "--target" in result.out
    assert "--proxy-protocol" in cli("tunnel", "server", "--help").out
    assert "--unsafe-listen" in cli("tunnel", "client", "--help").out


def test_tunnel_client_help_says_allow_options_pin_the_server(cli: Cli) -> None:
    client = cli("tunnel", "client", "--help")
    server = cli("tunnel", "server", "--help")
    assert client.code == 0 and server.code == 0
    flat = " ".join(client.out.split())
    for flag in ("--allow-cn", "--allow-ou", "--allow-dns", "--allow-uri", "--allow-fingerprint"):
        assert f"{flag} VALUE Pin the server to" in flat, flag
    assert "Allow clients with" not in client.out and "for clients" not in flat
    assert "Allow clients with this common name" in " ".join(server.out.split())
