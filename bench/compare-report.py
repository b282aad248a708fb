#!/usr/bin/env python3
"""Tables and SVG charts from a bench/compare.sh run: python3 compare-report.py DIR."""
import json
import os
import sys

out = sys.argv[1]
SERVERS = ["tidings", "nchan", "pushpin", "node"]


def load(name, scenario):
    try:
        with open(os.path.join(out, f"{name}-{scenario}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def error(name, scenario):
    try:
        with open(os.path.join(out, f"{name}-{scenario}.err")) as f:
            return f.read().strip().splitlines()[-1][:80]
    except (OSError, IndexError):
        return ""


def num(value, fmt="{:,.0f}"):
    return "–" if value is None else fmt.format(value).replace(",", " ")


def get(report, *keys):
    try:
        for key in keys:
            report = report[key]
        return report
    except (TypeError, KeyError):
        return None


def cores(report, key):
    seconds = get(report, "seconds")
    used = get(report, key)
    return None if not seconds or used is None else used / seconds


def ratio(a, b, fmt="{:.1f}×"):
    return "–" if a is None or not b else fmt.format(a / b)


lines = []
say = lines.append
with open(os.path.join(out, "machine.txt")) as f:
    for line in f:
        say(f"- {line.strip()}")
say("")

# A
say("### A. Idle: memory per subscriber (10 000 subscribers)")
say("")
say("| server | bytes per idle subscriber | vs Nchan |")
say("| --- | ---: | ---: |")
nchan_idle = get(load("nchan", "A"), "server_bytes_per_idle_subscriber")
for name in SERVERS:
    value = get(load(name, "A"), "server_bytes_per_idle_subscriber")
    if value is None and not error(name, "A"):
        continue
    say(f"| {name} | {num(value) if value is not None else error(name, 'A')} | {ratio(value, nchan_idle, '{:.2f}×')} |")
held = load("tidings", "A19k")
say("")
say(
    f"Tidings with 19 000 subscribers at once under its default limit: "
    + (f"{held['subscribers']} held, {num(held['server_bytes_per_idle_subscriber'])} B each."
       if held else f"failed: {error('tidings', 'A19k')}")
)
say("")

# B
say("### B. Fan-out: 1 000 subscribers, 2 000 × 100 B as fast as possible")
say("")
say("| server | publishers | deliveries/s | vs Nchan | p99 ms | server CPU ns/delivery | server cores | generator cores | lost | unexpected |")
say("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
chart_b = {}
for name in SERVERS:
    for p in [1, 4, 16, 64]:
        r = load(name, f"B{p}")
        if r is None and not error(name, f"B{p}"):
            continue
        n = load("nchan", f"B{p}")
        dps = get(r, "deliveries_per_sec")
        chart_b.setdefault(name, []).append((p, dps or 0))
        p99 = get(r, "latency_us", "p99")
        say("| " + " | ".join([
            name, str(p), num(dps) if r else error(name, f"B{p}"),
            ratio(dps, get(n, "deliveries_per_sec")),
            num(p99 / 1000 if p99 is not None else None, "{:.1f}"),
            num(get(r, "server_cpu_ns_per_delivery")),
            num(cores(r, "server_cpu_seconds"), "{:.2f}"),
            num(cores(r, "generator_cpu_seconds"), "{:.2f}"),
            num(get(r, "lost")),
            num(get(r, "unexpected")),
        ]) + " |")
say("")


def simple(title, scenario, extra=None):
    say(title)
    say("")
    say("| server | deliveries/s | vs Nchan | p50 ms | p99 ms | vs Nchan (p99) | server CPU ns/delivery | server cores | generator cores | lost | unexpected |")
    say("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    n = load("nchan", scenario)
    for name in SERVERS + (extra or []):
        r = load(name, scenario)
        if r is None and not error(name, scenario):
            continue
        p50, p99 = get(r, "latency_us", "p50"), get(r, "latency_us", "p99")
        say("| " + " | ".join([
            name, num(get(r, "deliveries_per_sec")) if r else error(name, scenario),
            ratio(get(r, "deliveries_per_sec"), get(n, "deliveries_per_sec")),
            num(p50 / 1000 if p50 is not None else None, "{:.1f}"),
            num(p99 / 1000 if p99 is not None else None, "{:.1f}"),
            ratio(p99, get(n, "latency_us", "p99"), "{:.2f}×"),
            num(get(r, "server_cpu_ns_per_delivery")),
            num(cores(r, "server_cpu_seconds"), "{:.2f}"),
            num(cores(r, "generator_cpu_seconds"), "{:.2f}"),
            num(get(r, "lost")),
            num(get(r, "unexpected")),
        ]) + " |")
    say("")


simple("### C. Wide: 10 000 subscribers, 200 × 100 B at 50/s", "C")
simple("### D. Many topics: 10 000 subscribers on a topic each, 10 000 updates spread over them", "D")
simple("### E. Large: 1 000 subscribers, 200 × 64 KiB", "E")

say("### F. Resume storm: 5 000 subscribers reconnect at once, 1 000 updates behind")
say("")
say("| server | all caught up in s | deliveries | lost | server CPU s |")
say("| --- | ---: | ---: | ---: | ---: |")
for name in ["tidings", "nchan"]:
    r = load(name, "F")
    if r is None:
        say(f"| {name} | {error(name, 'F') or '–'} | | | |")
        continue
    say(f"| {name} | {r['seconds']:.2f} | {num(r['deliveries'])} | {num(r['lost'])} | {num(get(r, 'server_cpu_seconds'), '{:.2f}')} |")
say("")
say("Pushpin keeps no history and the Node pattern has no resume: not run.")
say("")

say("### Cluster: three Tidings nodes on one Redis (everything on the same 2 cores)")
say("")
say("| scenario | deliveries/s | p50 ms | p99 ms | CPU ns/delivery (nodes + Redis) | lost |")
say("| --- | ---: | ---: | ---: | ---: | ---: |")
for scenario in ["B4", "B64", "C"]:
    r = load("cluster", scenario)
    if r is None:
        continue
    say(f"| {scenario} | {num(r['deliveries_per_sec'])} | {r['latency_us']['p50'] / 1000:.1f} | {r['latency_us']['p99'] / 1000:.1f} | {num(get(r, 'server_cpu_ns_per_delivery'))} | {num(r['lost'])} |")
say("")

with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))


def bars(path, title, groups, unit):
    """A grouped bar chart: groups = {series: [(label, value)]}."""
    colors = {"tidings": "#2b6cb0", "nchan": "#c05621", "pushpin": "#2f855a", "node": "#718096"}
    labels = sorted({label for series in groups.values() for label, _ in series})
    top = max([v for series in groups.values() for _, v in series] + [1])
    width, height, left, bottom = 640, 320, 70, 40
    slot = (width - left - 20) / max(len(labels), 1)
    bar = slot / (len(groups) + 1)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="14">{title}</text>']
    for i in range(5):
        y = height - bottom - (height - bottom - 30) * i / 4
        svg.append(f'<line x1="{left}" x2="{width - 20}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        svg.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{top * i / 4 / unit[0]:.1f}{unit[1]}</text>')
    for j, label in enumerate(labels):
        x0 = left + j * slot + bar / 2
        svg.append(f'<text x="{x0 + bar * len(groups) / 2}" y="{height - bottom + 16}" text-anchor="middle">{label}</text>')
        for k, (name, series) in enumerate(groups.items()):
            value = dict(series).get(label, 0)
            h = (height - bottom - 30) * value / top
            svg.append(f'<rect x="{x0 + k * bar}" y="{height - bottom - h}" width="{bar - 2}" height="{h}" fill="{colors.get(name, "#999")}"/>')
    for k, name in enumerate(groups):
        svg.append(f'<rect x="{left + k * 110}" y="{height - 14}" width="10" height="10" fill="{colors.get(name, "#999")}"/>')
        svg.append(f'<text x="{left + k * 110 + 14}" y="{height - 5}">{name}</text>')
    svg.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(svg) + "\n")


bars(os.path.join(out, "fanout.svg"), "B: deliveries/s by publishing connections (1 000 subscribers)",
     {name: [(f"{p} publishers", v) for p, v in series] for name, series in chart_b.items()}, (1e6, " M"))
idle = {name: [("bytes per idle subscriber", get(load(name, "A"), "server_bytes_per_idle_subscriber") or 0)]
        for name in SERVERS if load(name, "A")}
bars(os.path.join(out, "idle.svg"), "A: server memory per idle subscriber (10 000)", idle, (1e3, " KB"))
