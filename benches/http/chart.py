#!/usr/bin/env python3
"""Turns benches/http/run.sh's results.tsv into a Markdown table and an SVG
chart (served p99 on a log scale, and served req/s, per engine and load).

    python3 benches/http/chart.py RESULTS.tsv TABLE.md CHART.svg

Standard library only, so the bench needs nothing beyond oha and jq.
"""

import csv
import math
import sys
from html import escape

COLORS = {
    "corepool-budget10": "#1b7837",
    "corepool-budget10-nice10": "#00441b",
    "corepool": "#7fbf7b",
    "spawn-blocking": "#d6604d",
    "rayon": "#4393c3",
    "inline": "#999999",
}


def number(text):
    try:
        return float(text.rstrip("%"))
    except ValueError:
        return None


def table(rows):
    head = ["load", "engine", "offered req/s", "served req/s", "p50 ms", "p99 ms",
            "p99.9 ms", "503s", "in flight at the deadline", "peak RSS MiB",
            "pool wait p99 ms", "pool time p99 ms", "pool budget at the end ms"]
    keys = ["load", "engine", "rate", "served_rps", "p50_ms", "p99_ms", "p999_ms",
            "share_503", "deadline_aborts", "peak_rss_mib", "pool_wait_p99_ms",
            "pool_time_p99_ms", "queue_budget_ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(row[k] for k in keys) + " |")
    return "\n".join(lines) + "\n"


def panel(svg, rows, loads, engines, x0, y0, width, height, key, title, log):
    values = [number(r[key]) for r in rows if number(r[key])]
    if not values:
        return
    top = max(values)
    bottom = min(values)
    if log:
        lo = 10 ** math.floor(math.log10(bottom))
        hi = 10 ** math.ceil(math.log10(top))
        scale = lambda v: (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        ticks = [10 ** e for e in range(int(math.log10(lo)), int(math.log10(hi)) + 1)]
    else:
        lo, hi = 0.0, top * 1.1
        scale = lambda v: v / hi
        step = 10 ** math.floor(math.log10(hi / 2))
        ticks = [step * i for i in range(0, int(hi / step) + 1)]
    svg.append(f'<text x="{x0}" y="{y0 - 10}" font-size="14" font-weight="bold">{escape(title)}</text>')
    for t in ticks:
        y = y0 + height - scale(t) * height
        svg.append(f'<line x1="{x0}" x2="{x0 + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{t:g}"
        svg.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{label}</text>')
    group = width / len(loads)
    bar = group * 0.8 / len(engines)
    for i, load in enumerate(loads):
        gx = x0 + i * group + group * 0.1
        svg.append(f'<text x="{gx + group * 0.4:.1f}" y="{y0 + height + 16}" font-size="12" '
                   f'text-anchor="middle">{escape(load)} capacity</text>')
        for j, engine in enumerate(engines):
            row = next((r for r in rows if r["load"] == load and r["engine"] == engine), None)
            v = number(row[key]) if row else None
            if not v:
                continue
            h = max(scale(v), 0.0) * height
            x = gx + j * bar
            svg.append(f'<rect x="{x:.1f}" y="{y0 + height - h:.1f}" width="{bar * 0.9:.1f}" '
                       f'height="{h:.1f}" fill="{COLORS.get(engine, "#333")}">'
                       f'<title>{escape(engine)} at {escape(load)}: {v:g}</title></rect>')


def chart(rows):
    loads = list(dict.fromkeys(r["load"] for r in rows))
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    width, height = 900, 640
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>']
    panel(svg, rows, loads, engines, 70, 40, 640, 230, "p99_ms",
          "p99 of served requests, ms (log scale)", log=True)
    panel(svg, rows, loads, engines, 70, 360, 640, 230, "served_rps",
          "served requests per second (200s)", log=False)
    for j, engine in enumerate(engines):
        y = 60 + j * 22
        svg.append(f'<rect x="735" y="{y}" width="14" height="14" fill="{COLORS.get(engine, "#333")}"/>')
        svg.append(f'<text x="755" y="{y + 12}" font-size="12">{escape(engine)}</text>')
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def main():
    results, table_path, chart_path = sys.argv[1:4]
    with open(results, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(table_path, "w") as f:
        f.write(table(rows))
    with open(chart_path, "w") as f:
        f.write(chart(rows))


if __name__ == "__main__":
    main()
