"""How long `trustwire probe` takes, against sslyze on the same targets, in one run.

Targets on loopback, all `openssl s_server` (single-threaded: the hard case for a
concurrent prober):
  modern    TLS 1.2 + 1.3, ECDSA, no client certificates
  strict    the same, with -Verify 2 -verify_return_error, audited with --ca-key (every
            enumeration plus the whole mTLS audit)
  legacy    TLS 1.0-1.2, static RSA and CBC suites only (enumeration at SECLEVEL=0)

Each tool runs ROUNDS times per target, alternating, and the median is reported, with
trustwire / sslyze as a ratio (the shared machine is noisy: ratios in one run hold up).
``--other-src DIR`` adds a second trustwire (another checkout's src/) for before/after.

Usage: python bench/probe_speed.py [--rounds N] [--other-src DIR] [--no-sslyze] [--write]
(--write: put the table in docs/benchmarks.md, in a section bench/report.py keeps)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from trustwire.pki.ca import CertKind
from trustwire.pki.keys import KeyType
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def s_server(args: list[str]) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-quiet", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # stdin at EOF: it closes after handshakes
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
                   check=False, env=env)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--other-src", type=Path)
    parser.add_argument("--other-label", default="trustwire (other)",
                        help="its column's name, e.g. 'before (5c0010d)'")
    parser.add_argument("--no-sslyze", action="store_true")
    parser.add_argument("--write", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        home.init_ca(name="bench CA")
        local = SubjectAltNames.parse(dns=["localhost"])
        home.issue("ecdsa", kind=CertKind.SERVER, sans=local)
        home.issue("rsa", kind=CertKind.SERVER, sans=local, key_type=KeyType.RSA_3072)
        home.issue("alice", kind=CertKind.CLIENT)
        ecdsa, rsa, alice = home.identity("ecdsa"), home.identity("rsa"), home.identity("alice")
        targets = {
            "modern": ([ "-cert", str(ecdsa.cert), "-key", str(ecdsa.key)], []),
            "strict": (["-cert", str(ecdsa.cert), "-key", str(ecdsa.key), "-CAfile", str(ecdsa.ca),
                        "-Verify", "2", "-verify_return_error"],
                       ["--cert", str(alice.cert), "--key", str(alice.key),
                        "--ca-key", str(home.ca_key_path)]),
            "legacy": (["-cert", str(rsa.cert), "-key", str(rsa.key), "-no_tls1_3",
                        "-cipher", "AES128-SHA:AES256-SHA:AES128-GCM-SHA256:@SECLEVEL=0"], []),
        }
        tools: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "trustwire": ([sys.executable, "-m", "trustwire", "probe"], None)}
        if opts.other_src:
            env = dict(os.environ, PYTHONPATH=str(opts.other_src.resolve()))
            tools[opts.other_label] = ([sys.executable, "-m", "trustwire", "probe"], env)
        print(f"{'target':8} " + " ".join(f"{t:>18}" for t in tools) +
              ("" if opts.no_sslyze else f" {'sslyze':>10} {'ratio':>7}"))
        rows: list[str] = []
        for name, (server_args, extra) in targets.items():
            with s_server(server_args) as port:
                times: dict[str, list[float]] = {t: [] for t in tools}
                sslyze: list[float] = []
                for _ in range(opts.rounds):
                    for tool, (cmd, env) in tools.items():
                        times[tool].append(timed([*cmd, f"127.0.0.1:{port}", "--server-name",
                                                  "localhost", "--ca", str(ecdsa.ca), "--json",
                                                  *extra], env))
                    if not opts.no_sslyze:
                        sslyze.append(timed([sys.executable, "-m", "sslyze", f"127.0.0.1:{port}",
                                             "--sni", "localhost", "--quiet"]))
                medians = {t: statistics.median(v) for t, v in times.items()}
                line = f"{name:8} " + " ".join(f"{m:>17.2f}s" for m in medians.values())
                cells = [f"{m:.2f} s" for m in medians.values()]
                if sslyze:
                    theirs = statistics.median(sslyze)
                    line += f" {theirs:>9.2f}s {medians['trustwire'] / theirs:>7.2f}"
                    cells += [f"{theirs:.2f} s", f"{medians['trustwire'] / theirs:.2f}"]
                print(line, flush=True)
                rows.append(f"| {name} | " + " | ".join(cells) + " |")
    if opts.write:
        write_section(list(tools), not opts.no_sslyze, rows, opts.rounds)


def write_section(tools: list[str], with_sslyze: bool, rows: list[str], rounds: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from report import replace_section  # bench/report.py

    head = ["target", *tools] + (["sslyze", "trustwire / sslyze"] if with_sslyze else [])
    body = "\n".join([
        "## Probe: seconds per audit", "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"`bench/probe_speed.py` (median of {rounds} alternating runs of each tool, the whole "
        "command: process start to exit). Targets are single-threaded `openssl s_server`s on "
        "loopback: *modern* (TLS 1.2 + 1.3, ECDSA), *strict* (the same requiring client "
        "certificates, audited with `--ca-key`: the whole mTLS audit), *legacy* (TLS 1.0-1.2, "
        "static RSA and CBC only; before issue 12 the probe stopped there with exit 2, which is "
        "why it was quick). Below 1.00, trustwire is faster.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows])
    path = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
    path.write_text(replace_section(path.read_text(), "probe", body))


if __name__ == "__main__":
    main()
