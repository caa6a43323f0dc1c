"""The ``trustwire`` command: ``main(argv) -> int``.

Exit codes (DESIGN.md): 0 success, 1 refused operation or failed check,
2 usage error. Every error is printed as ``error: <one sentence>`` and, when
there is one, ``hint: <what to do>`` on stderr; a refused handshake adds
``see: <url>``, its reason's documentation page. Never a traceback (set
``TRUSTWIRE_DEBUG=1`` to see one for an unexpected internal error).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

import click

from trustwire import __version__
from trustwire.cli.ca_cmd import ca
from trustwire.cli.cert_cmd import cert
from trustwire.cli.common import (
    AppState,
    Verbosity,
    add_verbosity_options,
    resolve_home,
    set_verbosity,
    verbosity_chosen,
)
from trustwire.cli.demo_cmd import demo
from trustwire.cli.probe_cmd import probe
from trustwire.cli.renew_cmd import renew
from trustwire.cli.serve_cmd import send, serve
from trustwire.cli.tunnel_cmd import tunnel
from trustwire.errors import HandshakeError, TrustwireError

__all__ = ["cli", "main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="CA home directory (default: $TRUSTWIRE_HOME, else the user data dir).")
@click.version_option(__version__, prog_name="trustwire")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """trustwire: your own CA, mutually-authenticated TLS servers and clients,
    a TLS tunnel and a TLS probe.

    -v/--verbose and -q/--quiet go here or on any command."""
    if not verbosity_chosen(ctx):
        set_verbosity(Verbosity.NORMAL)  # a fresh invocation (main() runs many in one process)
    ctx.obj = AppState(home_path=resolve_home(home))
    logging.getLogger("trustwire").debug("home: %s", ctx.obj.home_path)


cli.add_command(ca)
cli.add_command(cert)
cli.add_command(serve)
cli.add_command(send)
cli.add_command(tunnel)
cli.add_command(probe)
cli.add_command(renew)
cli.add_command(demo)
add_verbosity_options(cli)  # -v/-q on the group and on every command (after they are all added)


def _error(message: str, hint: str | None = None, see: str | None = None) -> None:
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    if see:
        click.echo(f"see: {see}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    try:
        result = cli.main(args=argv, prog_name="trustwire", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        return 2
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "trustwire"
        _error(exc.format_message().rstrip("."), f"see `{command} --help`")
        return 2
    except click.Abort:
        _error("aborted")
        return 1
    except click.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except TrustwireError as exc:
        _error(exc.message, exc.hint, exc.docs_url if isinstance(exc, HandshakeError) else None)
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("TRUSTWIRE_DEBUG"):
            traceback.print_exc()
        _error(
            f"unexpected internal error ({type(exc).__name__}: {exc})",
            "run again with TRUSTWIRE_DEBUG=1 for details, and report it",
        )
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
