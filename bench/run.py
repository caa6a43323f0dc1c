"""trustwire against stunnel, haproxy, nginx and the stdlib-asyncio reference, in one run.

Every contender serves mutual TLS 1.3 with the same ECDSA P-256 certificates from
trustwire's CA and the same number of worker processes (threads for haproxy). The
peers sit in front of a C backend (bench/backend.c) so the backend is never the
bottleneck; the load generator is C too (bench/loadgen.c). With one worker the
contender (and its backend) run on CPU 1 and the load generator on CPU 0; with two,
everything shares both CPUs and the load generator's CPU share is reported.

Usage: python bench/run.py [--quick] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ROOT = HERE.parent
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [pid], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{pid}/statm") as f:
            total += int(f.read().split()[1]) * PAGE
    return total


# -- contenders ---------------------------------------------------------------------------------

@dataclass
class Pki:
    dir: Path
    ca: Path
    cert: Path
    key: Path
    combined: Path
    client_cert: Path
    client_key: Path
    crl: Path


@dataclass
class Contender:
    name: str
    kind: str  # "inprocess" (upper service itself) or "proxy" (in front of a backend)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    backend: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def pids(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc else []


def pinned(cpu: str | None, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *args] if cpu else args


def start_backend(mode: str, cpu: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(pinned(cpu, [str(OUT / "backend"), mode, str(port)]),
                            stdout=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start(name: str, pki: Pki, workers: int, backend_mode: str, cpu: str | None,
          tmp: Path) -> Contender:
    port = free_port()
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    max_conns = (open_files - 500) // 2
    trustwire = [sys.executable, "-m", "trustwire", "--home", str(pki.dir)]
    # The load generator is one source opening up to 10,000 connections at once; nginx and
    # haproxy have no cap on unfinished handshakes, so trustwire's are off here too (their
    # effect on certificate holders is what tests/integration/test_trust_core.py measures).
    common = ["--workers", str(workers), "--idle-timeout", "0", "--max-connections", "100000",
              "--reload-interval", "0", "--handshake-timeout", "30", "--max-handshakes", "0",
              "--max-handshakes-per-source", "0"]
    contender = Contender(name=name, kind="inprocess" if name in IN_PROCESS else "proxy",
                          port=port, workdir=tmp)
    if contender.kind == "proxy":
        contender.backend, backend_port = start_backend(backend_mode, cpu)
    try:
        return _start(contender, name, pki, workers, backend_port if contender.backend else 0,
                      cpu, tmp, common, trustwire, max_conns, open_files)
    except BaseException:
        stop(contender)
        raise


def _start(contender: Contender, name: str, pki: Pki, workers: int, backend_port: int,
           cpu: str | None, tmp: Path, common: list[str], trustwire: list[str], max_conns: int,
           open_files: int) -> Contender:
    port = contender.port
    if name == "trustwire-serve":
        args = [*trustwire, "serve", "--service", "upper", "--listen", f"127.0.0.1:{port}",
                "--identity", "server", *common]
    elif name == "trustwire-tunnel":
        args = [*trustwire, "tunnel", "server", "--listen", f"127.0.0.1:{port}", "--target",
                f"127.0.0.1:{backend_port}", "--identity", "server", *common]
    elif name == "asyncio-ref":
        args = [sys.executable, str(HERE / "reference_server.py"), str(port), str(pki.cert),
                str(pki.key), str(pki.ca), str(workers)]
    elif name == "stunnel":
        conf = tmp / f"stunnel-{port}.conf"
        conf.write_text(f"foreground = yes\npid =\noutput = /dev/null\n[svc]\naccept = 127.0.0.1:{port}\n"
                        f"connect = 127.0.0.1:{backend_port}\ncert = {pki.cert}\nkey = {pki.key}\n"
                        f"CAfile = {pki.ca}\nCRLfile = {pki.crl}\nverifyChain = yes\nrequireCert = yes\n"
                        f"sslVersionMin = TLSv1.2\n")
        args = [shutil.which("stunnel4") or "stunnel4", str(conf)]
    elif name == "haproxy":
        conf = tmp / f"haproxy-{port}.cfg"
        conf.write_text(f"""global
    nbthread {workers}
    maxconn {max_conns}
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode tcp
    timeout connect 5s
    timeout client 600s
    timeout server 600s
frontend fe
    bind 127.0.0.1:{port} ssl crt {pki.combined} ca-file {pki.ca} crl-file {pki.crl} verify required
    default_backend be
backend be
    server b1 127.0.0.1:{backend_port}
""")
        args = [shutil.which("haproxy") or "/usr/sbin/haproxy", "-f", str(conf), "-db"]
    elif name == "nginx":
        nginx_dir = tmp / f"nginx-{port}"
        nginx_dir.mkdir()
        conf = nginx_dir / "nginx.conf"
        conf.write_text(f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes {workers};
worker_rlimit_nofile {open_files};
daemon off;
pid {nginx_dir}/nginx.pid;
error_log stderr crit;
events {{ worker_connections {max_conns}; }}
stream {{
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {pki.cert};
        ssl_certificate_key {pki.key};
        ssl_client_certificate {pki.ca};
        ssl_verify_client on;
        ssl_crl {pki.crl};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        proxy_pass 127.0.0.1:{backend_port};
    }}
}}
""")
        args = [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(nginx_dir)]
    else:
        raise ValueError(name)
    log = open(tmp / f"{name}-{port}.log", "wb")  # noqa: SIM115 - lives as long as the process
    contender.proc = subprocess.Popen(pinned(cpu, args), stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_port(port)
    except RuntimeError:
        tail = (tmp / f"{name}-{port}.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{name} did not start listening on {port}:\n{tail}") from None
    time.sleep(0.3)
    return contender


def stop(contender: Contender) -> None:
    for proc in (contender.proc, contender.backend):
        if proc is None or proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM if contender.name != "nginx" or proc is contender.backend
                         else signal.SIGQUIT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            for pid in descendants(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(5)


# -- load ---------------------------------------------------------------------------------------

def loadgen(pki: Pki, mode: str, port: int, conns: int, seconds: float,
            cpu: str | None) -> dict[str, float]:
    args = pinned(cpu, [str(OUT / "loadgen"), mode, "127.0.0.1", str(port), str(pki.ca),
                        str(pki.client_cert), str(pki.client_key), str(conns), str(seconds)])
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 180, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(pki: Pki, contender: Contender, mode: str, conns: int, seconds: float,
            cpu: str | None) -> dict[str, float]:
    pids = contender.pids()
    backend = descendants(contender.backend.pid) if contender.backend else []
    before, before_backend = cpu_seconds(pids), cpu_seconds(backend)
    result = loadgen(pki, mode, contender.port, conns, seconds, cpu)
    elapsed = result["seconds"] + (0.5 if mode in ("rr", "bulk") else 0.3)  # incl. warm-up
    result["server_cpu"] = (cpu_seconds(pids) - before) / elapsed
    result["backend_cpu"] = (cpu_seconds(backend) - before_backend) / elapsed
    result["loadgen_share"] = result["loadgen_cpu_s"] / result["seconds"]
    if mode == "bulk" and result["bytes"]:
        # The load generator is the bottleneck for one connection (it encrypts on one
        # core): the server's CPU per GiB is the comparison that holds anyway.
        # CPU share over GiB/s: the warm-up runs at the same rate, so no bias from it.
        result["server_cpu_s_per_gib"] = result["server_cpu"] / (
            result["bytes"] / result["seconds"] / 2**30)
    ops = result["round_trips"] if mode == "rr" else result["handshakes"]
    if ops:
        result["server_us_per_op"] = result["server_cpu"] * result["seconds"] / ops * 1e6
    return result


def idle_memory(pki: Pki, contender: Contender, conns: int, cpu: str | None) -> dict[str, float]:
    """RSS growth of the contender's processes per idle mTLS connection."""
    warm = subprocess.Popen(pinned(cpu, [str(OUT / "loadgen"), "idle", "127.0.0.1",
                                         str(contender.port), str(pki.ca), str(pki.client_cert),
                                         str(pki.client_key), "50", "600"]),
                            stdout=subprocess.PIPE, text=True)
    assert warm.stdout is not None
    warm.stdout.readline()
    time.sleep(1.0)
    before = rss_bytes(contender.pids())
    holder = subprocess.Popen(pinned(cpu, [str(OUT / "loadgen"), "idle", "127.0.0.1",
                                           str(contender.port), str(pki.ca), str(pki.client_cert),
                                           str(pki.client_key), str(conns), "600"]),
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    ready = json.loads(holder.stdout.readline())
    time.sleep(2.0)
    after = rss_bytes(contender.pids())
    for proc in (holder, warm):
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    time.sleep(1.0)
    return {"conns": conns, "ready": ready["ready"], "errors": ready["errors"],
            "kib_per_conn": (after - before) / max(1, ready["ready"]) / 1024,
            "negotiated": ready.get("negotiated", "")}


# -- machine limits -----------------------------------------------------------------------------

def machine_limits() -> dict[str, float | str]:
    def speed(*args: str) -> str:
        return subprocess.run(["openssl", "speed", "-seconds", "1", *args], capture_output=True,
                              text=True, timeout=120, check=False).stdout

    ecdsa = re.search(r"nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", speed("ecdsap256"))
    x25519 = re.search(r"\(X25519\)\s+\S+\s+([\d.]+)", speed("ecdhx25519"))
    gcm = speed("-evp", "aes-256-gcm").strip().splitlines()[-1].split()  # what TLS 1.3 negotiates
    sign, verify = float(ecdsa.group(1)), float(ecdsa.group(2))  # type: ignore[union-attr]
    x = float(x25519.group(1))  # type: ignore[union-attr]
    # server, full mTLS handshake: sign CertificateVerify, verify the client's certificate and
    # its CertificateVerify, X25519 key generation and derivation
    per_handshake = 1 / sign + 2 / verify + 2 / x
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count() or 0,
            "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True,
                                      check=False).stdout.strip(),
            "aes256gcm_16k_mib_s": float(gcm[-1].rstrip("k")) * 1000 / 1048576,
            "ecdsa_sign_s": sign, "ecdsa_verify_s": verify, "x25519_s": x,
            "handshake_bound_s": 1 / per_handshake}


# -- the run ------------------------------------------------------------------------------------

def make_pki(tmp: Path) -> Pki:
    home = tmp / "home"
    tw = [sys.executable, "-m", "trustwire", "--home", str(home)]
    subprocess.run([*tw, "ca", "init", "--name", "bench CA"], check=True, capture_output=True)
    subprocess.run([*tw, "cert", "issue", "server", "--server", "--dns", "localhost", "--ip",
                    "127.0.0.1"], check=True, capture_output=True)
    subprocess.run([*tw, "cert", "issue", "client", "--client"], check=True, capture_output=True)
    certs = home / "certs"
    combined = tmp / "server-combined.pem"
    combined.write_bytes((certs / "server.crt").read_bytes() + (certs / "server.key").read_bytes())
    combined.chmod(0o600)
    return Pki(dir=home, ca=home / "ca" / "ca.crt", cert=certs / "server.crt",
               key=certs / "server.key", combined=combined, client_cert=certs / "client.crt",
               client_key=certs / "client.key", crl=home / "ca" / "crl.pem")


def build() -> None:
    OUT.mkdir(exist_ok=True)
    for name, libs in (("backend", []), ("loadgen", ["-lssl", "-lcrypto"])):
        subprocess.run(["cc", "-O2", "-o", str(OUT / name), str(HERE / f"{name}.c"), *libs],
                       check=True)


IN_PROCESS = ("trustwire-serve", "asyncio-ref")
"""Contenders that run the service themselves (no backend, so no bulk sink)."""
CONTENDERS = ("trustwire-serve", "trustwire-tunnel", "stunnel", "haproxy", "nginx", "asyncio-ref")
MODES = ("bulk", "handshake", "resume", "rr", "idle")


@dataclass
class Plan:
    runs: int
    seconds: float
    workers: tuple[int, ...]
    bulk_conns: tuple[int, ...]
    rr_conns: tuple[int, ...]
    idle_conns: tuple[int, ...]
    contenders: tuple[str, ...] = CONTENDERS
    modes: tuple[str, ...] = MODES


def jobs_for(name: str, plan: Plan) -> list[tuple[str, list[tuple[str, int]]]]:
    """Groups of (mode, conns) sharing one contender process, with its backend mode.

    Every idle measurement gets a fresh process: memory freed by earlier load stays in
    the allocator and would hide what new connections cost."""
    groups: list[tuple[str, list[tuple[str, int]]]] = []
    if "bulk" in plan.modes and name not in IN_PROCESS:
        groups.append(("sink", [("bulk", c) for c in plan.bulk_conns]))
    busy = [(m, c) for m, cs in (("handshake", (16,)), ("resume", (16,)), ("rr", plan.rr_conns))
            if m in plan.modes for c in cs]
    if busy:
        groups.append(("upper", busy))
    if "idle" in plan.modes:
        groups += [("upper", [("idle", c)]) for c in plan.idle_conns]
    return groups


def run(plan: Plan) -> dict[str, object]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    # A proxy holds two descriptors per connection (client and backend): stay under the
    # hard limit, which an unprivileged run cannot raise.
    ceiling = (hard - 500) // 2
    if max(plan.idle_conns) > ceiling:
        print(f"open files are capped at {hard}: idle runs use at most {ceiling} connections")
        plan.idle_conns = tuple(min(c, ceiling) for c in plan.idle_conns)
    build()
    results: dict[str, object] = {"started": dt.datetime.now(dt.UTC).isoformat(),
                                  "limits": {**machine_limits(), "open_files": hard},
                                  "plan": plan.__dict__, "rows": []}
    samples: dict[tuple[str, int, str, int], list[dict[str, float]]] = {}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trustwire-bench-") as tmp_name:
        tmp = Path(tmp_name)
        pki = make_pki(tmp)
        # Rounds interleave the contenders, so a slow minute on the shared machine
        # lands on all of them rather than on one.
        for round_no in range(1, plan.runs + 1):
            for workers in plan.workers:
                server_cpu, load_cpu = ("1", "0") if workers == 1 else (None, None)
                for name in plan.contenders:
                    for backend_mode, items in jobs_for(name, plan):
                        contender = start(name, pki, workers, backend_mode, server_cpu, tmp)
                        try:
                            for mode, conns in items:
                                sample = (idle_memory(pki, contender, conns, load_cpu)
                                          if mode == "idle" else
                                          measure(pki, contender, mode, conns, plan.seconds,
                                                  load_cpu))
                                samples.setdefault((name, workers, mode, conns), []).append(sample)
                        finally:
                            stop(contender)
            print(f"round {round_no}/{plan.runs} done after {time.monotonic() - began:.0f}s",
                  flush=True)
    rows: list[dict[str, object]] = results["rows"]  # type: ignore[assignment]
    for (name, workers, mode, conns), found in samples.items():
        rows.append({"contender": name, "workers": workers, "mode": mode, "conns": conns,
                     "samples": found})
        print(f"{name:17s} w={workers} {mode:9s} c={conns:<5d} {summary(mode, found)}")
    return results


def metric(mode: str) -> str:
    return {"bulk": "mib_s", "handshake": "rate", "resume": "rate", "rr": "rate",
            "idle": "kib_per_conn"}[mode]


def summary(mode: str, samples: list[dict[str, float]]) -> str:
    values = sorted(s.get(metric(mode), 0.0) for s in samples)
    extra = ""
    if mode == "rr":
        extra = f" p99 {statistics.median(s['p99_us'] for s in samples):.0f}us"
    if mode != "idle":
        extra += f" server-cpu {statistics.median(s['server_cpu'] for s in samples):.2f}" \
                 f" loadgen {statistics.median(s['loadgen_share'] for s in samples):.2f}"
    return f"{statistics.median(values):9.1f} ({values[0]:.1f}-{values[-1]:.1f}){extra}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="under 5 minutes")
    parser.add_argument("--out", type=Path, default=None,
                        help="report path (default docs/benchmarks.md for a full run, "
                             "bench/out/benchmarks.md otherwise)")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated workloads")
    args = parser.parse_args()
    if args.quick:
        plan = Plan(runs=3, seconds=1.0, workers=(1,), bulk_conns=(1,), rr_conns=(1, 64),
                    idle_conns=(1000,))
    else:
        plan = Plan(runs=3, seconds=2.0, workers=(1, 2), bulk_conns=(1, 4),
                    rr_conns=(1, 64, 1000), idle_conns=(1000, 10000))
    plan.contenders = tuple(args.only.split(","))
    plan.modes = tuple(args.modes.split(","))
    unknown = (set(plan.contenders) - set(CONTENDERS)) | (set(plan.modes) - set(MODES))
    if unknown:
        parser.error(f"unknown contender or workload: {', '.join(sorted(unknown))}")
    full = not args.quick and plan.contenders == CONTENDERS and plan.modes == MODES
    out = args.out or (ROOT / "docs" / "benchmarks.md" if full else OUT / "benchmarks.md")
    results = run(plan)
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    if full:  # the raw samples behind the published report
        (ROOT / "docs" / "benchmarks.json").write_text(json.dumps(results, indent=1))
    from report import write_report  # bench/report.py

    write_report(results, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
