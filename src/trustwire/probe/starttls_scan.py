"""The STARTTLS preflight: one dialogue before any handshake, to fail in plain words.

Every connection of a STARTTLS probe runs the dialogue
(:func:`trustwire.probe.connect.open_connection`), but a handshake that cannot connect only
records why. :func:`check_starttls` runs the dialogue once first, so a server that does not
offer STARTTLS (or does not speak the protocol) stops the probe with that sentence and a
hint (:class:`~trustwire.errors.Unreachable`, exit 2) instead of a report of refusals. It
costs one connection and the dialogue's round trips.
"""

from __future__ import annotations

from trustwire.errors import Unreachable
from trustwire.probe.attempt import Runner
from trustwire.probe.connect import ConnectFailed, StarttlsFailed, open_connection

__all__ = ["check_starttls"]


def check_starttls(runner: Runner) -> None:
    """For a STARTTLS target, check that the dialogue ends in TLS; nothing otherwise.

    Raises:
        Unreachable: when the target cannot be reached or will not start TLS.
    """
    target = runner.target
    if target.starttls is None:
        return
    where = target.describe()
    try:
        open_connection(target, runner.options.timeout).close()
    except StarttlsFailed as exc:
        raise Unreachable(f"cannot start TLS with {where}: {exc.reason}", hint=exc.hint) from None
    except ConnectFailed as exc:
        raise Unreachable(f"cannot connect to {where}: {exc.reason}",
                          hint="check the address and that the service is running") from None
