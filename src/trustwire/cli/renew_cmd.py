"""``trustwire renew``: keep a short-lived certificate (and the CRL) fresh."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
from pathlib import Path

import click

from trustwire.cli.common import AppState, fmt_time, passphrase_option, read_passphrase
from trustwire.pki.ca import utcnow
from trustwire.pki.renewal import crl_due, due_at, parse_before, renew_if_due

__all__ = ["renew"]


@click.command()
@click.option("--identity", "name", required=True, metavar="NAME", help="Certificate to keep fresh.")
@click.option("--before", default="1/3", show_default=True,
              help="Renew when this much of the lifetime is left (1/3, 0.33 or 33%).")
@click.option("--once", is_flag=True, help="Check once and exit (for cron or a systemd timer).")
@click.option("--interval", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Daemon mode: longest sleep between checks, in seconds.")
@click.option("--refresh-crl", is_flag=True,
              help="Also sign a fresh CRL when a third of its validity is left.")
@passphrase_option
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per check, each on one line (see below).")
@click.pass_obj
def renew(state: AppState, name: str, before: str, once: bool, interval: float, refresh_crl: bool,
          passphrase_file: Path | None, as_json: bool) -> None:
    """Renew NAME's certificate when --before of its lifetime is left.

    The new certificate and key replace HOME/certs/NAME.{crt,key} atomically; a
    `serve` or `tunnel` using --identity NAME picks them up without a restart.

    --json prints, per check, {"name", "renewed": bool, "record": <as `cert issue --json`,
    the current certificate>, "next_due": TIME, "crl_next_update": TIME or null (with
    --refresh-crl, when refreshed)}.
    """
    fraction = parse_before(before)
    passphrase = read_passphrase(passphrase_file)
    home = state.home
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    while True:
        now = utcnow()
        record = renew_if_due(home, name, before=fraction, now=now, passphrase=passphrase)
        if record is not None and not as_json:
            click.echo(f"renewed {name}: serial {record.serial_hex}, valid until "
                       f"{fmt_time(record.not_after)}")
        crl_next: dt.datetime | None = None
        if refresh_crl and crl_due(home, now):
            crl = home.regenerate_crl(passphrase=passphrase, now=now)
            crl_next = crl.next_update_utc or now
            if not as_json:
                click.echo(f"refreshed the CRL; next update {fmt_time(crl_next)}")
        with home.inventory() as inventory:
            current = inventory.current(name)
        assert current is not None  # noqa: S101 - renew_if_due raised otherwise
        next_due = due_at(current, fraction)
        if as_json:
            click.echo(json.dumps({
                "name": name, "renewed": record is not None, "record": current.as_json(utcnow()),
                "next_due": next_due.isoformat(),
                "crl_next_update": crl_next.isoformat() if crl_next else None,
            }), nl=True)
            if once:
                return
        elif once:
            if record is None:
                click.echo(f"{name} is not due: renewal at {fmt_time(next_due)}")
            return
        wait = min(interval, max(1.0, (next_due - utcnow()).total_seconds()))
        if stop.wait(wait):
            return

