"""Write trustwire(1), the man page, from the CLI's own command tree.

Usage: python docs/tools/manpage.py OUT_FILE     (``make man``)

Every command of ``trustwire.cli.main.cli``, with its usage line, help text, arguments
and options as click reports them (``--help`` prints the same), so the page cannot
drift from the program. click-man does this job but is unmaintained; click's public
API (contexts, ``get_usage``, ``get_help_record``) is all it takes. Output is plain
man(7) macros that ``man -l`` and ``groff -man`` render.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from trustwire import __version__
from trustwire.cli.main import cli
from trustwire.errors import DOCS_URL

__all__ = ["commands", "main", "render"]


def _escape(text: str) -> str:
    """Text as roff: backslashes and hyphens escaped, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line
                     for line in text.splitlines())


def _paragraphs(help_text: str) -> list[str]:
    """click's help: paragraphs split by blank lines; ``\\b`` marks one not to re-wrap."""
    lines: list[str] = []
    for block in inspect.cleandoc(help_text).split("\n\n"):
        if block.startswith("\b"):
            lines += [".nf", _escape(block.lstrip("\b\n")), ".fi"]
        else:
            lines += [".PP", _escape(" ".join(block.split()))]
    return lines


def commands(group: click.Group = cli) -> Iterator[tuple[click.Context, click.Command]]:
    """Every visible command under ``group`` (groups too), depth first, with its context."""
    root = click.Context(group, info_name="trustwire", **group.context_settings)

    def walk(ctx: click.Context) -> Iterator[tuple[click.Context, click.Command]]:
        yield ctx, ctx.command
        if isinstance(ctx.command, click.Group):
            for name in ctx.command.list_commands(ctx):
                sub = ctx.command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from walk(click.Context(sub, info_name=name, parent=ctx))

    yield from walk(root)


def _options(ctx: click.Context, command: click.Command) -> list[str]:
    lines: list[str] = []
    help_option = command.get_help_option(ctx)
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument):
            continue  # named in the usage line
        if param is help_option and ctx.parent is not None:
            continue  # every command has --help: said once, under GLOBAL OPTIONS
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        lines += [".TP", f"\\fB{_escape(names)}\\fR", _escape(help_text) if help_text else ""]
    return lines


def _section(ctx: click.Context, command: click.Command) -> list[str]:
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f".SS {_escape(ctx.command_path)}", ".PP",
             f"\\fB{_escape(ctx.command_path)}\\fR {_escape(usage)}"]
    lines += _paragraphs(command.help or command.short_help or "")
    if isinstance(command, click.Group):
        subs = ", ".join(f"\\fB{_escape(name)}\\fR" for name in command.list_commands(ctx))
        lines += [".PP", f"Commands: {subs}."]
    options = _options(ctx, command)
    if options:
        lines += [".PP", "Options:", ".RS", *options, ".RE"]
    return lines


def render(*, date: dt.date | None = None) -> str:
    """The man page, as roff text."""
    when = (date or dt.date.today()).isoformat()
    all_commands = list(commands())
    root_ctx, root = all_commands[0]
    lines = [
        f'.TH TRUSTWIRE 1 "{when}" "trustwire {__version__}" "User Commands"',
        ".SH NAME",
        "trustwire \\- your own CA, mutually\\-authenticated TLS servers and clients, a TLS "
        "tunnel and a TLS probe",
        ".SH SYNOPSIS",
        f"\\fBtrustwire\\fR {_escape(' '.join(root.collect_usage_pieces(root_ctx)))}",
        ".SH DESCRIPTION",
        *_paragraphs(root.help or ""),
        ".PP",
        "Every command has \\fB\\-\\-help\\fR; data commands have \\fB\\-\\-json\\fR. Errors "
        "are one sentence and a hint on standard error, never a traceback; a refused TLS "
        "handshake adds \\fBsee:\\fR and the page that explains its reason.",
        ".SH COMMANDS",
    ]
    for ctx, command in all_commands[1:]:
        lines += _section(ctx, command)
    lines += [
        ".SH GLOBAL OPTIONS",
        "Given before the command (\\fBtrustwire \\-\\-home DIR cert list\\fR); "
        "\\fB\\-h\\fR and \\fB\\-\\-help\\fR work after any command too.",
        ".RS", *_options(root_ctx, root), ".RE",
        ".SH ENVIRONMENT",
        ".TP", "\\fBTRUSTWIRE_HOME\\fR",
        "The home (CA state) when \\fB\\-\\-home\\fR is not given; else the user data directory.",
        ".TP", "\\fBTRUSTWIRE_PASSPHRASE_FILE\\fR",
        "File whose first line is the CA key's passphrase (\\fB\\-\\-passphrase\\-file\\fR).",
        ".TP", "\\fBTRUSTWIRE_DEBUG\\fR",
        "When set, an unexpected internal error prints its traceback.",
        ".TP", "\\fB_TRUSTWIRE_COMPLETE\\fR",
        "\\fBbash_source\\fR, \\fBzsh_source\\fR or \\fBfish_source\\fR: print the shell "
        "completion script instead of running a command.",
        ".SH FILES",
        ".TP", "\\fIHOME\\fR/ca/ca.crt, \\fIHOME\\fR/ca/ca.key, \\fIHOME\\fR/ca/crl.pem",
        "The root CA's certificate, key (mode 0600) and CRL.",
        ".TP", "\\fIHOME\\fR/certs/\\fINAME\\fR.crt, \\fIHOME\\fR/certs/\\fINAME\\fR.key",
        "An identity's certificate chain and key (\\fB\\-\\-identity\\fR \\fINAME\\fR).",
        ".TP", "\\fIHOME\\fR/index.db", "The inventory of issued certificates (SQLite).",
        ".SH EXIT STATUS",
        "0 on success, 1 when an operation was refused or a check failed, 2 on a usage error.",
        ".SH SEE ALSO",
        f"The documentation: {_escape(DOCS_URL)}/ (\\fBmake docs\\fR builds it locally), "
        f"and each diagnosis reason under {_escape(DOCS_URL)}/reasons/.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    # SOURCE_DATE_EPOCH (reproducible builds) pins the date on the page.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    date = dt.datetime.fromtimestamp(int(epoch), dt.UTC).date() if epoch else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(date=date))
    print(f"manpage: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
