#!/usr/bin/env python3
"""Turns bench/run's per-scenario lines into bench/results/<stamp>.json and .md, and prints the table.

Usage: report.py SCENARIOS.jsonl OUT_STEM [--parts PARTS.jsonl] [--setting key=value ...]

PARTS.jsonl holds the ledger-only loop's lines (crates/ledger/examples/ledger_loop.rs), one per
repeat and ledger setting: with nginx's CPU per proxied request they are the parts of a cancel.
"""

import json
import os
import platform
import subprocess
import sys


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - machine facts are best effort
        return ""


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": sh("nproc"),
        "cpu_model": model,
        "memory": sh("free -h | awk '/^Mem:/ {print $2}'"),
        "kernel": platform.release(),
        "wrk": sh("wrk -v 2>&1 | head -1"),
        "nginx": sh("nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1"),
        "rustc": sh("rustc --version"),
    }


def ms(us):
    return None if us is None else us / 1000.0


def fmt(v, nd=3):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def derive(rows):
    """Per repeat: ratios against nginx (throughput) and added latency against direct (latency)."""
    out = []
    for r in rows:
        d = dict(r)
        n = r["requests"] or 1
        d["errors_total"] = sum(r["errors"].values())
        d["proxy_cpu_s_per_1k"] = None if r["proxy_cpu_s"] is None else r["proxy_cpu_s"] / n * 1000
        d["sandbox_cpu_s_per_1k"] = r["sandbox_cpu_s"] / n * 1000
        same = [x for x in rows if x["rep"] == r["rep"] and x["kind"] == r["kind"]]
        direct = next((x for x in same if x["label"] == "direct"), None)
        nginx = next((x for x in same if x["label"] == "nginx"), None)
        lat = r["latency_us"]
        if direct and r["label"] != "direct":
            d["added_p50_ms"] = ms(lat["p50"] - direct["latency_us"]["p50"])
            d["added_p99_ms"] = ms(lat["p99"] - direct["latency_us"]["p99"])
        else:
            d["added_p50_ms"] = d["added_p99_ms"] = None
        d["rps_ratio_vs_nginx"] = r["rps"] / nginx["rps"] if nginx and r["label"] != "direct" else None
        out.append(d)
    return out


def name(r):
    return r["label"] + (f" ({r['ledger']})" if r.get("ledger") else "")


def tables(rows, settings):
    md = []
    for rep in sorted({r["rep"] for r in rows}):
        for kind in ("throughput", "latency"):
            sel = [r for r in rows if r["rep"] == rep and r["kind"] == kind]
            if not sel:
                continue
            if kind == "throughput":
                title = (f"Run {rep}, throughput: closed loop, {sel[0]['conns']} connections, "
                         f"{settings.get('duration_s', '?')} s each")
            else:
                title = (f"Run {rep}, latency: {sel[0]['conns']} connections paced to ~{settings.get('lat_rate', '?')} "
                         f"req/s in all ({sel[0]['delay_ms']} ms between a connection's requests)")
            md.append(f"### {title}\n")
            md.append("| scenario | req/s | p50 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms | "
                      "× nginx req/s | proxy CPU s/1k req | sandbox CPU s/1k req | proxy peak RSS MB | errors | busy before % |")
            md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in sel:
                lat = r["latency_us"]
                rss = None if r["proxy_peak_rss_kb"] is None else r["proxy_peak_rss_kb"] / 1024
                md.append("| " + " | ".join([
                    name(r), fmt(r["rps"], 0), fmt(ms(lat["p50"])), fmt(ms(lat["p99"])), fmt(ms(lat["p999"])),
                    fmt(r["added_p50_ms"]), fmt(r["added_p99_ms"]), fmt(r["rps_ratio_vs_nginx"], 2),
                    fmt(r["proxy_cpu_s_per_1k"]), fmt(r["sandbox_cpu_s_per_1k"]), fmt(rss, 1),
                    str(r["errors_total"]), str(r.get("busy_before_pct", "–")),
                ]) + " |")
            md.append("")
    return "\n".join(md)


# Issue 20's targets: (ledger -> minimum × nginx for real cancels), the replay mix's minimum, and
# (ledger -> added p50, added p99 maxima in ms) at ~100 req/s.
RPS_MIN = {"normal": 0.25, "full": 0.2}
REPLAY_MIN = 0.6
LATENCY_MAX = {"normal": (0.5, 2.0), "full": (1.5, 3.0)}
PARTS_RATIO_MAX = 2.0
LOW_LOAD_CPU_MAX = 1.5


def find(rows, rep, label, kind, ledger=None):
    return next((r for r in rows if r["rep"] == rep and r["label"] == label and r["kind"] == kind
                 and (ledger is None or r.get("ledger") == ledger)), None)


def cpu_ms(r):
    """The proxy's CPU ms per request of a scenario row."""
    if r is None or r.get("proxy_cpu_s") is None or not r["requests"]:
        return None
    return r["proxy_cpu_s"] / r["requests"] * 1000


def mark(v, ok, nd=2):
    return "–" if v is None else f"{v:.{nd}f} {'✅' if ok(v) else '❌'}"


def targets(rows):
    """Issue 20's targets, judged per repeat and ledger (the PostgreSQL ledger has none: shown)."""
    lines = ["| run | ledger | real cancels × nginx | replay mix × nginx (≥ 0.6) | added p50 ms | added p99 ms |",
             "|---|---|---:|---:|---:|---:|"]
    for rep in sorted({r["rep"] for r in rows}):
        for ledger in sorted({r["ledger"] for r in rows if r.get("ledger")}):
            t = find(rows, rep, "gateway", "throughput", ledger)
            rp = find(rows, rep, "gateway-replay", "throughput", ledger)
            lt = find(rows, rep, "gateway", "latency", ledger)
            rps, replay = t and t["rps_ratio_vs_nginx"], rp and rp["rps_ratio_vs_nginx"]
            p50, p99 = lt and lt["added_p50_ms"], lt and lt["added_p99_ms"]
            if ledger not in RPS_MIN:
                # PostgreSQL: figures for the table, no target of its own.
                lines.append(f"| {rep} | {ledger} | {fmt(rps, 2)} | {fmt(replay, 2)} | {fmt(p50)} | {fmt(p99)} |")
                continue
            rmin = RPS_MIN[ledger]
            p50max, p99max = LATENCY_MAX[ledger]
            lines.append(f"| {rep} | {ledger} | "
                         f"{mark(rps, lambda v: v >= rmin)} (≥ {rmin}) | "
                         f"{mark(replay, lambda v: v >= REPLAY_MIN)} | "
                         f"{mark(p50, lambda v: v <= p50max)} (≤ {p50max}) | "
                         f"{mark(p99, lambda v: v <= p99max)} (≤ {p99max}) |")
    return "\n".join(lines)


def parts_table(rows, parts):
    """The parts of a cancel and the gateway's CPU against their sum, per repeat and ledger."""
    lines = ["| run | ledger | nginx CPU ms per request | ledger-only CPU ms per cancel | ledger-only cancels/s | "
             "sum of parts ms | gateway CPU ms per real cancel | ratio (≤ 2) | gateway CPU ms per cancel at ~100 req/s | "
             "low load / saturated (≤ 1.5) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    derived = []
    for p in parts:
        rep, ledger = p["rep"], p["ledger"]
        nginx = cpu_ms(find(rows, rep, "nginx", "throughput"))
        gw = cpu_ms(find(rows, rep, "gateway", "throughput", ledger))
        low = cpu_ms(find(rows, rep, "gateway", "latency", ledger))
        led = p["cpu_ms_per_cancel"]
        total = None if nginx is None else nginx + led
        ratio = None if total is None or gw is None else gw / total
        low_ratio = None if low is None or gw is None else low / gw
        derived.append(dict(p, nginx_cpu_ms=nginx, gateway_cpu_ms=gw, gateway_low_load_cpu_ms=low,
                            parts_sum_ms=total, parts_ratio=ratio, low_load_ratio=low_ratio))
        lines.append(f"| {rep} | {ledger} | {fmt(nginx)} | {fmt(led)} | {fmt(p['cancels_per_s'], 0)} | {fmt(total)} | "
                     f"{fmt(gw)} | {mark(ratio, lambda v: v <= PARTS_RATIO_MAX)} | {fmt(low)} | "
                     f"{mark(low_ratio, lambda v: v <= LOW_LOAD_CPU_MAX)} |")
    return "\n".join(lines), derived


def main():
    src, stem = sys.argv[1], sys.argv[2]
    settings = {}
    parts_src = None
    args = sys.argv[3:]
    while args:
        if args[0] == "--parts":
            parts_src = args[1]
            args = args[2:]
        elif args[0] == "--setting":
            k, v = args[1].split("=", 1)
            settings[k] = v
            args = args[2:]
        else:
            raise SystemExit(f"unknown argument {args[0]}")
    rows = derive([json.loads(line) for line in open(src) if line.strip()])
    parts = [json.loads(line) for line in open(parts_src) if line.strip()] if parts_src else []
    parts_md, parts = parts_table(rows, parts)
    m = machine()
    stamp = os.path.basename(stem)
    doc = {"stamp": stamp, "machine": m, "settings": settings, "scenarios": rows, "parts": parts}
    with open(stem + ".json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    md = [f"# bench/run {stamp}\n",
          f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['memory']} memory, Linux {m['kernel']}; "
          f"{m['wrk']}; {m['nginx']}; {m['rustc']}.\n",
          "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + ".\n",
          "Latencies are wrk's (from the request's first byte written to the answer's last byte read). "
          "`added` is against `direct` in the same run and kind; `× nginx` is req/s against nginx's in the "
          "same run. CPU is utime+stime of the proxy process(es) (nginx master+workers, or the gateway) and of "
          "the sandbox during the measured run; peak RSS is VmHWM, reset before each run. `busy before` is how busy "
          "both CPUs were in the second before the run (other work on the machine; ~0 is a clean run).\n",
          "## Targets\n", targets(rows), "",
          "## The parts of a cancel\n",
          "nginx's CPU per proxied request (its throughput run) plus the ledger's own CPU per cancel for the "
          "gateway's two writes, driven without HTTP by `ledger_loop` (concurrent loops, as many as the throughput "
          "runs' connections); on PostgreSQL that is the client's CPU only. The ratio is the gateway's CPU per real "
          "cancel at saturation over that sum.\n",
          parts_md, "", "## Results\n", tables(rows, settings)]
    text = "\n".join(md) + "\n"
    with open(stem + ".md", "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
