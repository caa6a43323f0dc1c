"""What every command shares: the home, passphrases, lifetimes, output.

Flags and environment variables are read here and in the command modules
only; everything below the CLI receives plain values and dataclasses.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import platformdirs
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from trustwire.errors import ConfigError
from trustwire.pki.ca import BACKDATE, CertKind, Validity
from trustwire.pki.store import Home

__all__ = [
    "AppState",
    "Verbosity",
    "add_verbosity_options",
    "echo_json",
    "err_console",
    "fmt_time",
    "info",
    "kind_options",
    "lifetime_options",
    "out_console",
    "passphrase_option",
    "plain",
    "print_table",
    "quiet",
    "read_passphrase",
    "resolve_home",
    "resolve_kind",
    "resolve_lifetime",
    "resolve_validity",
    "set_verbosity",
    "validity_options",
    "verbosity_chosen",
    "warn",
]

F = TypeVar("F", bound=Callable[..., Any])


def resolve_home(option: Path | None) -> Path:
    """``--home``, else ``$TRUSTWIRE_HOME``, else the platform's user data dir."""
    if option is not None:
        return option.expanduser()
    env = os.environ.get("TRUSTWIRE_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("trustwire"))


@dataclass
class AppState:
    """Per-invocation state handed to every command via click's context."""

    home_path: Path

    @property
    def home(self) -> Home:
        return Home(self.home_path)


def out_console() -> Console:
    """stdout console; created per call so tests capturing stdout see the output.

    No emoji codes: ``IP:fd00::1234:5678`` must not print as ``fd00:🔢5678``. Markup stays
    for the styles the commands add; data from certificates (subjects, SANs, anything a
    foreign certificate or server chose) goes through :func:`plain` first."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=True, emoji=False)


def print_table(table: Table) -> None:
    """Print a table on stdout without ever splitting a cell: fingerprints, dates and SAN
    lists stay whole (and copyable) at 80 columns and when piped. When the table is
    wider than the terminal, its lines run past the edge instead of wrapping inside."""
    console = out_console()
    for column in table.columns:
        column.no_wrap = True
        column.overflow = "ignore"
    natural = Measurement.get(console, console.options.update(width=10_000), table).maximum
    if natural > console.width:
        console = Console(file=sys.stdout, highlight=False, soft_wrap=True, emoji=False,
                          width=natural)
    console.print(table)


def err_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True, emoji=False)


def plain(value: object) -> str:
    """``value`` as text that rich prints verbatim: a subject ``O=[link=...]Bank[/link]`` or
    ``CN=[/x]`` is shown as written, never taken for markup (or crashing on it)."""
    return escape(str(value))


class Verbosity(enum.IntEnum):
    """``-q`` (errors and the data asked for), normal, or ``-v`` (debug logging)."""

    QUIET = -1
    NORMAL = 0
    VERBOSE = 1


class _EchoHandler(logging.Handler):
    """Log records to the current stderr (click.echo finds it at each call, so tests
    capturing stderr see them)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"trustwire: {record.levelname.lower()}: {self.format(record)}", err=True)


_state = {"verbosity": Verbosity.NORMAL}


def set_verbosity(level: Verbosity) -> None:
    """Apply ``-v``/``-q`` for this invocation: notices on stderr, and the ``trustwire``
    logger (DEBUG with -v, errors only with -q, warnings otherwise)."""
    _state["verbosity"] = level
    logger = logging.getLogger("trustwire")
    for handler in [h for h in logger.handlers if isinstance(h, _EchoHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(_EchoHandler())
    logger.propagate = False
    logger.setLevel({Verbosity.QUIET: logging.ERROR, Verbosity.NORMAL: logging.WARNING,
                     Verbosity.VERBOSE: logging.DEBUG}[level])


_CHOSEN = "trustwire.verbosity"
"""Key in click's ``ctx.meta`` (shared by a command and its parents): the -v/-q given."""


def _verbosity_flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        level = Verbosity.VERBOSE if param.name == "verbose" else Verbosity.QUIET
        chosen = ctx.meta.get(_CHOSEN)
        if chosen is not None and chosen is not level:
            raise click.UsageError("give either --verbose or --quiet, not both", ctx=ctx)
        ctx.meta[_CHOSEN] = level
        set_verbosity(level)
    return value


def verbosity_chosen(ctx: click.Context) -> bool:
    """Whether -v or -q was given so far in this invocation."""
    return _CHOSEN in ctx.meta


def add_verbosity_options(command: click.Command) -> None:
    """Give ``command`` and every command under it ``-v/--verbose`` and ``-q/--quiet``, so
    ``trustwire cert issue -v ...`` works as ``trustwire -v cert issue ...`` does; both
    set the same state, and -v with -q anywhere in one command line is a usage error."""
    names = {name for param in command.params for name in param.opts}
    if "--verbose" not in names:
        command.params.extend([
            click.Option(["-v", "--verbose"], is_flag=True, expose_value=False,
                         callback=_verbosity_flag, help="Debug logging and more detail on stderr."),
            click.Option(["-q", "--quiet"], is_flag=True, expose_value=False,
                         callback=_verbosity_flag,
                         help="Print only errors and the data asked for (no notices or warnings)."),
        ])
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity_options(sub)


def info(text: str) -> None:
    """A notice on stderr (what is about to happen, where a server listens); not with -q."""
    if _state["verbosity"] > Verbosity.QUIET:
        click.echo(text, err=True)


def quiet() -> bool:
    return _state["verbosity"] is Verbosity.QUIET


def warn(message: str) -> None:
    info(f"warning: {message}")


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def fmt_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def read_passphrase(path: Path | None) -> bytes | None:
    """The first line of a passphrase file, without its newline.

    Raises:
        ConfigError: unreadable or empty file.
    """
    if path is None:
        return None
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(
            f"cannot read the passphrase file {path}: {exc.strerror}",
            hint="check the path given with --passphrase-file (or TRUSTWIRE_PASSPHRASE_FILE); "
                 "its first line is the passphrase",
        ) from exc
    passphrase = data.splitlines()[0] if data else b""
    if not passphrase:
        said = ("is empty" if not data.strip() else
                "has an empty first line (the passphrase is the first line, whole)")
        raise ConfigError(f"the passphrase file {path} {said}",
                          hint="put the passphrase on the file's first line")
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warn(f"{path} is readable by other users; `chmod 600 {path}` keeps the passphrase private")
    return passphrase


def passphrase_option(func: F) -> F:
    return click.option(
        "--passphrase-file", type=click.Path(path_type=Path, dir_okay=False),
        envvar="TRUSTWIRE_PASSPHRASE_FILE", show_envvar=True,
        help="File whose first line is the CA key's passphrase.",
    )(func)


def kind_options(func: F) -> F:
    for flag, kind in (("--both", "both"), ("--client", "client"), ("--server", "server")):
        func = click.option(
            flag, kind, is_flag=True, default=False,
            help={"server": "TLS server certificate (EKU serverAuth).",
                  "client": "TLS client certificate (EKU clientAuth).",
                  "both": "Both server and client (EKU serverAuth and clientAuth)."}[kind],
        )(func)
    return func


def resolve_kind(server: bool, client: bool, both: bool) -> CertKind:
    chosen = [k for k, on in (("server", server), ("client", client), ("both", both)) if on]
    if len(chosen) != 1:
        raise click.UsageError("choose exactly one of --server, --client or --both")
    return CertKind(chosen[0])


def lifetime_options(func: F) -> F:
    func = click.option("--hours", type=click.IntRange(min=1), default=None,
                        help="Lifetime in hours, for short-lived certificates.")(func)
    return click.option("--days", type=click.IntRange(min=1), default=None,
                        help="Lifetime in days (default 90, at most 397).")(func)


def resolve_lifetime(days: int | None, hours: int | None) -> dt.timedelta | None:
    """The lifetime asked for, or None when neither --days nor --hours was given."""
    if days is not None and hours is not None:
        raise click.UsageError("give either --days or --hours, not both")
    if days is not None:
        return dt.timedelta(days=days)
    if hours is not None:
        return dt.timedelta(hours=hours)
    return None


def validity_options(func: F) -> F:
    """--not-before / --not-after: an absolute window instead of --days / --hours."""
    func = click.option("--not-after", metavar="TIME",
                        help="End of validity, ISO 8601 (UTC unless it has an offset), e.g. "
                             "2026-03-01T12:00 or 2026-03-01T12:00+01:00.")(func)
    return click.option("--not-before", metavar="TIME",
                        help="Start of validity, ISO 8601 (default: now, less 5 minutes for "
                             "clock skew).")(func)


def _iso_time(value: str, flag: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not an ISO 8601 time",
                          hint="write it like 2026-03-01T12:00:00Z or 2026-03-01T12:00+01:00") from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def resolve_validity(
    days: int | None, hours: int | None, not_before: str | None, not_after: str | None,
    *, now: dt.datetime, default: dt.timedelta,
) -> dt.timedelta | Validity:
    """The lifetime (--days/--hours, else ``default``) or the absolute window asked for.

    Raises:
        click.UsageError: --not-before/--not-after combined with --days/--hours.
        ConfigError: an unparsable time, or the end not after the start.
    """
    if not_before is None and not_after is None:
        return resolve_lifetime(days, hours) or default
    if days is not None or hours is not None:
        raise click.UsageError("give either --days/--hours or --not-before/--not-after, not both")
    start = _iso_time(not_before, "--not-before") if not_before else now - BACKDATE
    end = _iso_time(not_after, "--not-after") if not_after else start + default
    return Validity(start, end)
