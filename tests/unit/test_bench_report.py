"""bench/report.py: the targets table says holds or misses from the ratios, never by fiat."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _report() -> Any:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(name: str, mode: str, conns: int, **metrics: float) -> dict[str, Any]:
    return {"contender": name, "workers": 1, "mode": mode, "conns": conns,
            "samples": [dict(metrics), dict(metrics), dict(metrics)]}


def _results(rows: list[dict[str, Any]]) -> dict[str, Any]:
    plan = {"runs": 3, "workers": [1], "bulk_conns": [1], "rr_conns": [64], "idle_conns": [1000]}
    limits = {"cores": 2, "openssl": "OpenSSL 3.0", "aes128gcm_16k_mib_s": 3000.0,
              "ecdsa_sign_s": 40000.0, "ecdsa_verify_s": 13000.0, "x25519_s": 26000.0,
              "handshake_bound_s": 4000.0}
    return {"started": "2026-11-22T12:00:00", "plan": plan, "limits": limits, "rows": rows}


def test_targets_compare_with_the_best_peer_and_say_whether_they_hold() -> None:
    report = _report()
    results = _results([
        _row("trustwire-tunnel", "bulk", 1, mib_s=900.0),
        _row("nginx", "bulk", 1, mib_s=600.0),
        _row("haproxy", "bulk", 1, mib_s=750.0),
        _row("trustwire-serve", "rr", 64, rate=40000.0, p99_us=2000.0),
        _row("trustwire-tunnel", "rr", 64, rate=20000.0, p99_us=4000.0),
        _row("nginx", "rr", 64, rate=29000.0, p99_us=3000.0),
        _row("trustwire-serve", "idle", 1000, kib_per_conn=28.0),
        _row("haproxy", "idle", 1000, kib_per_conn=56.0),
        _row("nginx", "idle", 1000, kib_per_conn=10.0),  # only haproxy counts for memory
    ])
    lines = "\n".join(report.targets(results))
    x, d = report.TIMES, report.DASH
    assert f"| bulk MiB/s ≥ 1.0x best peer | 1 | 1 | haproxy | {d} | 1.20{x} holds |" in lines
    assert "| round trips/s at 64 connections ≥ 1.0x best peer | 1 | 64 | nginx | " \
           f"1.38{x} holds | 0.69{x} misses |" in lines
    assert f"| p99 at 64 connections ≤ best peer's | 1 | 64 | nginx | 1.50{x} holds | " \
           f"0.75{x} misses |" in lines
    assert f"| idle KiB per connection ≤ 1.0x haproxy | 1 | 1000 | haproxy | 2.00{x} holds | {d} |" \
           in lines


def test_a_report_without_peers_has_no_targets_and_no_empty_sections(tmp_path: Path) -> None:
    report = _report()
    results = _results([_row("trustwire-serve", "rr", 64, rate=40000.0, p50_us=1000.0,
                             p99_us=2000.0, server_cpu=1.0, server_us_per_op=25.0,
                             loadgen_share=0.8)])
    assert report.targets(results) == []
    out = tmp_path / "benchmarks.md"
    report.write_report(results, out)
    text = out.read_text()
    d = report.DASH
    assert "## Targets" not in text
    assert "## 64-byte request/response round trips per second" in text
    assert f"| trustwire-serve | 40000 (40000{d}40000) | 1000 | 2000 | 1.00 | 25 | 0.80 |" in text
    assert "## Bulk" not in text and "## Memory" not in text


def test_the_report_checks_every_contender_negotiated_the_same() -> None:
    report = _report()
    same = _results([
        _row("trustwire-serve", "rr", 64, rate=1.0, negotiated="TLSv1.3 TLS_AES_256_GCM_SHA384 x25519"),
        _row("nginx", "rr", 64, rate=1.0, negotiated="TLSv1.3 TLS_AES_256_GCM_SHA384 x25519"),
    ])
    assert report.negotiated(same) == ("Every contender negotiated the same: TLSv1.3 "
                                       "TLS_AES_256_GCM_SHA384 x25519 (version, suite, group).")
    differ = _results([
        _row("trustwire-serve", "rr", 64, rate=1.0, negotiated="TLSv1.3 TLS_AES_128_GCM_SHA256 x25519"),
        _row("nginx", "rr", 64, rate=1.0, negotiated="TLSv1.3 TLS_AES_256_GCM_SHA384 x25519"),
    ])
    assert report.negotiated(differ).startswith("**Warning: the contenders negotiated different")
    assert "nginx: TLSv1.3 TLS_AES_256_GCM_SHA384 x25519" in report.negotiated(differ)


def test_sections_written_by_other_benchmarks_survive_a_regeneration(tmp_path: Path) -> None:
    report = _report()
    out = tmp_path / "benchmarks.md"
    out.write_text(report.replace_section("# old report\n", "probe", "## Probe\n| a | 1 |"))
    assert out.read_text().count("<!-- section: probe -->") == 1
    again = report.replace_section(out.read_text(), "probe", "## Probe\n| a | 2 |")
    assert "| a | 2 |" in again and "| a | 1 |" not in again
    out.write_text(again)
    report.write_report(_results([_row("nginx", "bulk", 1, mib_s=600.0)]), out)
    text = out.read_text()
    assert "| a | 2 |" in text and "# old report" not in text and text.startswith("# Benchmarks")
