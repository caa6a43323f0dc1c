"""Turn bench/out/results.json into docs/benchmarks.md and plots under docs/."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

DASH, TIMES = "\u2013", "\u00d7"  # typography for the Markdown report
PEERS = ("stunnel", "haproxy", "nginx")
ORDER = ("trustwire-serve", "trustwire-tunnel", "stunnel", "haproxy", "nginx", "asyncio-ref")
TITLES = {
    ("bulk", "mib_s"): "Bulk through the tunnel to a sink (MiB/s, higher is better)",
    ("handshake", "rate"): "Full mTLS handshakes per second (no resumption)",
    ("resume", "rate"): "Resumed mTLS handshakes per second (TLS 1.3 tickets)",
    ("rr", "rate"): "64-byte request/response round trips per second",
    ("idle", "kib_per_conn"): "Memory per idle mTLS connection (KiB of RSS, lower is better)",
}


EFFICIENCY = {"bulk": "server CPU s per GiB", "handshake": "server CPU µs per handshake",
              "resume": "server CPU µs per handshake", "rr": "server CPU µs per round trip"}
EFFICIENCY_KEY = {"bulk": "server_cpu_s_per_gib", "handshake": "server_us_per_op",
                  "resume": "server_us_per_op", "rr": "server_us_per_op"}


def med(samples: list[dict[str, Any]], key: str) -> float:
    values = [float(s.get(key, 0.0)) for s in samples]
    return statistics.median(values) if values else 0.0


def span(samples: list[dict[str, Any]], key: str) -> str:
    values = sorted(float(s.get(key, 0.0)) for s in samples)
    fmt = "{:.0f}" if max(values or [0]) >= 100 else "{:.1f}"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(values[0])}{DASH}{fmt.format(values[-1])})"


def rows_for(results: dict[str, Any], mode: str, workers: int, conns: int) -> dict[str, list[dict[str, Any]]]:
    return {r["contender"]: r["samples"] for r in results["rows"]
            if r["mode"] == mode and r["workers"] == workers and r["conns"] == conns}


def ratio_line(rows: dict[str, list[dict[str, Any]]], key: str, lower_better: bool,
               ours: tuple[str, ...]) -> str:
    """``ours`` against the best peer; above 1.0 means trustwire is ahead."""
    peers = {p: med(rows[p], key) for p in PEERS if p in rows and med(rows[p], key) > 0}
    if not peers:
        return ""
    best_peer = (min if lower_better else max)(peers, key=peers.__getitem__)
    best = peers[best_peer]
    parts = []
    for name in ours:
        value = med(rows[name], key) if name in rows else 0.0
        if value > 0:
            ratio = (best / value) if lower_better else (value / best)
            parts.append(f"{name} {ratio:.2f}{TIMES} ({'ahead' if ratio >= 1.0 else 'behind'})")
    if not parts:
        return ""
    return f"Against the best peer ({best_peer}): " + ", ".join(parts) + "."


def table(results: dict[str, Any], mode: str, key: str) -> list[str]:
    lines: list[str] = []
    plan = results["plan"]
    conns_list = {"bulk": plan["bulk_conns"], "rr": plan["rr_conns"], "idle": plan["idle_conns"]}.get(
        mode, [16])
    for workers in plan["workers"]:
        for conns in conns_list:
            rows = rows_for(results, mode, workers, conns)
            if not rows:
                continue
            what = {"idle": "connection", "bulk": "connection", "rr": "connection"}.get(
                mode, "concurrent handshake") + ("s" if conns > 1 else "")
            lines.append(f"**{workers} worker{'s' if workers > 1 else ''}, {conns} {what}**\n")
            header = "| contender | " + ("KiB per connection" if mode == "idle" else
                                        "MiB/s" if mode == "bulk" else "per second")
            if mode == "rr":
                header += " | p50 µs | p99 µs"
            if mode != "idle":
                header += " | server CPU (cores) | " + EFFICIENCY[mode] + " | load generator CPU"
            lines += [header + " |", "|" + "---|" * (header.count("|"))]
            for name in ORDER:
                if name not in rows:
                    continue
                s = rows[name]
                cells = [name, span(s, key)]
                if mode == "rr":
                    cells += [f"{med(s, 'p50_us'):.0f}", f"{med(s, 'p99_us'):.0f}"]
                if mode != "idle":
                    per_op = med(s, EFFICIENCY_KEY[mode])
                    cells += [f"{med(s, 'server_cpu'):.2f}",
                              (f"{per_op:.2f}" if mode == "bulk" else f"{per_op:.0f}") if per_op
                              else DASH,
                              f"{med(s, 'loadgen_share'):.2f}"]
                lines.append("| " + " | ".join(cells) + " |")
            ours = ("trustwire-serve", "trustwire-tunnel")
            notes = [ratio_line(rows, key, mode == "idle", ours)]
            if mode != "idle":
                notes.append(ratio_line(rows, EFFICIENCY_KEY[mode], True, ours).replace(
                    "Against the best peer", "Server CPU per unit of work against the most "
                    "frugal peer"))
            if mode == "rr":
                notes.append(ratio_line(rows, "p99_us", True, ours).replace(
                    "Against the best peer", "p99 latency against the best peer"))
            lines += ["", *(note + "\n" for note in notes if note)]
    return lines


TARGETS = (
    # (workload, conns or None for the plan's list, metric, lower is better, ours, what)
    ("bulk", None, "mib_s", False, ("trustwire-tunnel",), "bulk MiB/s ≥ 1.0x best peer"),
    ("handshake", 16, "rate", False, ("trustwire-serve", "trustwire-tunnel"),
     "full handshakes/s ≥ 1.0x best peer"),
    ("resume", 16, "rate", False, ("trustwire-serve", "trustwire-tunnel"),
     "resumed handshakes/s ≥ 1.0x best peer"),
    ("rr", 64, "rate", False, ("trustwire-serve", "trustwire-tunnel"),
     "round trips/s at 64 connections ≥ 1.0x best peer"),
    ("rr", 64, "p99_us", True, ("trustwire-serve", "trustwire-tunnel"),
     "p99 at 64 connections ≤ best peer's"),
    ("idle", None, "kib_per_conn", True, ("trustwire-serve", "trustwire-tunnel"),
     "idle KiB per connection ≤ 1.0x haproxy"),
)


def targets(results: dict[str, Any]) -> list[str]:
    """One line per target, worker count and connection count: the ratio and whether it holds."""
    plan = results["plan"]
    lines = ["| target | workers | connections | best peer | " + " | ".join(
        ("trustwire-serve", "trustwire-tunnel")) + " |", "|---|---|---|---|---|---|"]
    for mode, conns, key, lower, ours, what in TARGETS:
        conns_list = [conns] if conns else plan[f"{mode}_conns"]
        for workers in plan["workers"]:
            for c in conns_list:
                rows = rows_for(results, mode, workers, c)
                peers = ("haproxy",) if mode == "idle" else PEERS
                values = {p: med(rows[p], key) for p in peers if p in rows and med(rows[p], key) > 0}
                if not values:
                    continue
                best = (min if lower else max)(values, key=values.__getitem__)
                cells = []
                for name in ("trustwire-serve", "trustwire-tunnel"):
                    value = med(rows[name], key) if name in rows and name in ours else 0.0
                    if value <= 0:
                        cells.append(DASH)
                        continue
                    ratio = values[best] / value if lower else value / values[best]
                    cells.append(f"{ratio:.2f}{TIMES} {'holds' if ratio >= 1.0 else 'misses'}")
                lines.append(f"| {what} | {workers} | {c} | {best} | " + " | ".join(cells) + " |")
    return [*lines, ""] if len(lines) > 2 else []


def plot(results: dict[str, Any], docs: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    images = []
    plan = results["plan"]
    panels = [("bulk", "mib_s", plan["bulk_conns"][-1]), ("handshake", "rate", 16),
              ("resume", "rate", 16), ("rr", "rate", 64), ("idle", "kib_per_conn", plan["idle_conns"][0])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4))
    for axis, (mode, key, conns) in zip(axes, panels, strict=False):
        for offset, workers in enumerate(plan["workers"]):
            rows = rows_for(results, mode, workers, conns)
            names = [n for n in ORDER if n in rows]
            xs = [i + offset * 0.4 for i in range(len(names))]
            values = [med(rows[n], key) for n in names]
            axis.bar(xs, values, width=0.4, label=f"{workers} worker(s)")
            axis.set_xticks([i + 0.2 for i in range(len(names))], names, rotation=60, ha="right",
                            fontsize=8)
        axis.set_title(f"{mode} ({key}, {conns})", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = docs / "benchmarks.png"
    fig.savefig(path, dpi=90)
    images.append(path.name)
    return images


def negotiated(results: dict[str, Any]) -> str:
    """What the load generator negotiated with each contender: the same for all, or a warning."""
    seen: dict[str, set[str]] = {}
    for row in results["rows"]:
        for sample in row["samples"]:
            if sample.get("negotiated"):
                seen.setdefault(row["contender"], set()).add(sample["negotiated"])
    values = set().union(*seen.values()) if seen else set()
    if not values:
        return ""
    if len(values) == 1:
        return f"Every contender negotiated the same: {values.pop()} (version, suite, group)."
    each = "; ".join(f"{name}: {', '.join(sorted(v))}" for name, v in sorted(seen.items()))
    return f"**Warning: the contenders negotiated different parameters**: {each}."


def aes_line(limits: dict[str, Any]) -> str:
    for key, name in (("aes256gcm_16k_mib_s", "AES-256-GCM"), ("aes128gcm_16k_mib_s", "AES-128-GCM")):
        if key in limits:
            return f"- {name}, one core, 16 KiB blocks: {limits[key]:.0f} MiB/s"
    return ""


def write_report(results: dict[str, Any], out: Path) -> None:
    limits = results["limits"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['started'][:16].replace('T', ' ')} UTC on this project's CI machine "
        f"kind ({limits['cores']} cores, {limits['openssl']}); `make bench` reproduces it "
        "(`make bench-quick` in under five minutes). Every number is the median of "
        f"{results['plan']['runs']} runs with the min{DASH}max in parentheses; ratios compare "
        "contenders measured in the same run, at equal worker counts.",
        "",
        "Every contender serves mutual TLS 1.3 (X25519, ECDSA P-256 certificates from "
        "trustwire's CA, client certificates required and verified against the CA and its CRL; "
        "only `asyncio-ref` skips the CRL). stunnel, haproxy (`mode "
        "tcp`, `verify required`) and nginx (`stream`, `ssl_verify_client on`) sit in front of a "
        "C backend (`bench/backend.c`: a sink, or the uppercase echo speaking trustwire's "
        "length-prefixed frames); `trustwire-serve` runs the upper service in-process; "
        "`asyncio-ref` is the straightforward stdlib-asyncio server a user would write "
        "(`bench/reference_server.py`). The load generator is C against OpenSSL "
        "(`bench/loadgen.c`). With one worker, the contender and its backend run on CPU 1 and "
        "the load generator on CPU 0; with two, all share both CPUs. *server CPU* is the "
        "contender's processes only (cores busy); *load generator CPU* near 1.0 means the client "
        "side, not the server, set the pace. stunnel has no worker setting (one thread per "
        "connection); it runs as is.",
        "",
        negotiated(results),
        "",
        "## Machine limits",
        "",
        aes_line(limits),
        f"- ECDSA P-256: {limits['ecdsa_sign_s']:.0f} signatures/s, {limits['ecdsa_verify_s']:.0f} "
        "verifications/s; X25519: " f"{limits['x25519_s']:.0f} operations/s (one core)",
        f"- Server-side full mTLS handshake (1 signature, 2 verifications, 2 X25519 operations): "
        f"at most {limits['handshake_bound_s']:.0f} per second per core from cryptography alone",
        "",
    ]
    summary = targets(results)
    if summary:
        lines += ["## Targets", "",
                  "Each ratio is trustwire over the best peer in the same run (for memory and "
                  "latency, the peer's figure over ours), so above 1.00 means trustwire is "
                  "ahead. Where a target misses, [performance.md](performance.md) shows where "
                  "the time goes.", "", *summary]
    for (mode, key), title in TITLES.items():
        body = table(results, mode, key)
        if body:
            lines += [f"## {title}", "", *body]
    images = plot(results, out.parent)
    for image in images:
        lines += [f"![benchmarks]({image})", ""]
    kept = kept_sections(out.read_text() if out.exists() else "")
    out.write_text("\n".join(lines) + "\n" + kept)


SECTION_START, SECTION_END = "<!-- section: ", "<!-- end section -->"
"""Sections other benchmarks (bench/probe_speed.py) write into the report between these
markers; a regeneration keeps them."""


def kept_sections(text: str) -> str:
    """The marked sections of an existing report, to carry over."""
    kept, rest = [], text
    while SECTION_START in rest:
        start = rest.index(SECTION_START)
        end = rest.find(SECTION_END, start)
        if end < 0:
            break
        kept.append(rest[start:end + len(SECTION_END)])
        rest = rest[end + len(SECTION_END):]
    return "".join(f"\n{block}\n" for block in kept)


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the section ``name`` set to ``body`` (appended if absent)."""
    block = f"{SECTION_START}{name} -->\n{body.rstrip()}\n{SECTION_END}"
    start = text.find(f"{SECTION_START}{name} -->")
    if start < 0:
        return text.rstrip() + "\n\n" + block + "\n"
    end = text.index(SECTION_END, start) + len(SECTION_END)
    return text[:start] + block + text[end:]


if __name__ == "__main__":
    write_report(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
