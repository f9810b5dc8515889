#!/usr/bin/env python3
"""End-to-end benchmark: the release binary syncs generated records to the fake Mailchimp API at
a fixed per-request latency, and the table shows how close it gets to Mailchimp's ceiling.

    ./scripts/bench.py            # 20/100/500 ms × 200,000/1,000,000 records × concurrency 5 (default) and 10
    ./scripts/bench.py --quick    # 200,000 records only, one run each
    ./scripts/bench.py --sizes 1000000 --runs 3

Every row is the median of --runs runs (3 unless --quick). Before them, a CPU row: 1,000,000 records
at zero latency, where the connector's own CPU per record is the figure. After them, the per-contact
rows at 100 ms: a sync of deletions with `on_delete: archive` (one call per contact) and an
owned-tag sync where every contact loses a tag (one batch request per 500 contacts and one call per
contact); their ceiling is requests in flight / latency calls per second.

It also draws docs/images/benchmark.svg (--chart another path): contacts per second and the ratio
to the ceiling against latency, for the default 5 requests and for 10, from the 200,000-record rows.

For each run: records/s; the ceiling (requests in flight × 500 contacts / latency); their ratio;
the peak number of requests the fake saw at once; the connector's CPU seconds, CPU per record and
peak resident memory; and the fake's own CPU, as a share of the run's wall time (so one can see
that the fake is not the bottleneck). Every record has its own email, so every request carries a
full batch of 500 contacts.
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
BATCH = 500
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def process_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def start_fake(latency_ms):
    fake = subprocess.Popen(
        [os.path.join(BIN, "fake-mailchimp"), "serve", "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = fake.stdout.readline().strip()
    if not line.startswith("MAILCHIMP_API_BASE_URL="):
        fake.kill()
        sys.exit(f"the fake Mailchimp server did not start: {line!r}")
    return fake, line.split("=", 1)[1]


def fake_stats(base_url):
    root = base_url.rsplit("/3.0", 1)[0]
    with urllib.request.urlopen(f"{root}/_fake/stats") as answer:
        return json.load(answer)


def write_lines(path, lines):
    with open(path, "w") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")


def contact_records(count, **data):
    """`count` records of the demo stream, each with its own email and the given fields."""
    for i in range(count):
        record = {"email": f"contact{i}@shop-{i % 97}.io", **data}
        yield {"type": "RECORD", "record": {"namespace": "crm", "stream": "customers", "emitted_at": 1, "data": record}}


def generate(records, path):
    with open(path, "w") as out:
        subprocess.run(
            [os.path.join(BIN, "fake-mailchimp"), "generate", "--records", str(records), "--state-every", "10000"],
            stdout=out,
            check=True,
        )


def sync(base_url, config_path, input_path, output_path):
    """One `write` run; returns its exit status and resource usage."""
    with open(input_path) as stdin, open(output_path, "w") as stdout:
        connector = subprocess.Popen(
            [os.path.join(BIN, "destination-mailchimp"), "write", "--config", config_path,
             "--catalog", os.path.join(ROOT, "integration_tests", "configured_catalog.json")],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "MAILCHIMP_API_BASE_URL": base_url},
        )
        _, status, usage = os.wait4(connector.pid, 0)
    return status, usage


def first_write_seconds(output_path):
    """The summary's time from the start to the first write request."""
    for line in open(output_path):
        message = json.loads(line).get("log", {}).get("message", "")
        if "First write request sent" in message:
            return float(message.split("First write request sent ")[1].split(" s")[0])
    return float("nan")


def run(records, input_path, latency_ms, concurrency, work, settings=None, seed_path=None):
    config = json.load(open(os.path.join(ROOT, "integration_tests", "sample_config.json")))
    if concurrency is not None:
        config["max_concurrent_requests"] = concurrency
    config.update(settings or {})
    config_path = os.path.join(work, "config.json")
    json.dump(config, open(config_path, "w"))
    fake, base_url = start_fake(latency_ms)
    try:
        if seed_path is not None:
            # The contacts exist first (an untimed sync), so that the timed one changes them.
            status, _ = sync(base_url, config_path, seed_path, os.path.join(work, "seed-out.jsonl"))
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"the seeding sync failed; see {work}/seed-out.jsonl")
        requests_before = fake_stats(base_url)["requests"]
        fake_cpu_before = process_cpu_seconds(fake.pid)
        started = time.monotonic()
        status, usage = sync(base_url, config_path, input_path, os.path.join(work, "out.jsonl"))
        wall = time.monotonic() - started
        fake_cpu = process_cpu_seconds(fake.pid) - fake_cpu_before
        stats = fake_stats(base_url)
    finally:
        fake.terminate()
        fake.wait()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"the sync failed; see {work}/out.jsonl")
    states = sum(1 for line in open(os.path.join(work, "out.jsonl")) if json.loads(line).get("type") == "STATE")
    in_flight = concurrency or 5
    calls = stats["requests"] - requests_before
    if settings:
        # Per-contact paths: the ceiling is in calls per second.
        ceiling = in_flight / (latency_ms / 1000)
        rate = calls / wall
    else:
        ceiling = in_flight * BATCH / (latency_ms / 1000) if latency_ms else float("inf")
        rate = records / wall
    return {
        "calls": calls,
        "first_write": first_write_seconds(os.path.join(work, "out.jsonl")),
        "latency_ms": latency_ms,
        "records": records,
        "concurrency": f"{in_flight}" + (" (default)" if concurrency is None else ""),
        "rate": rate,
        "ceiling": ceiling,
        "ratio": rate / ceiling,
        "peak": stats["peak_in_flight"],
        "cpu": usage.ru_utime + usage.ru_stime,
        "cpu_us": (usage.ru_utime + usage.ru_stime) * 1e6 / records,
        "rss_mb": usage.ru_maxrss / 1024,
        "fake_share": fake_cpu / wall,
        "states": states,
    }


COLORS = {5: "#615eff", 10: "#e07a00"}


def write_chart(path, rows, machine):
    """An SVG of the 200,000-record rows: records/s (log scale, the ceiling dashed) and the ratio to
    the ceiling, against latency, one line per concurrency. Plain SVG text, no plotting library."""
    smallest = min(r["records"] for r in rows)
    rows = [r for r in rows if r["records"] == smallest]
    latencies = sorted({r["latency"] for r in rows})
    width, height, top, bottom, panel_w, gap, left = 800, 370, 74, 84, 300, 110, 64
    plot_h = height - top - bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{left}" y="22" font-size="15" font-weight="bold">End to end against the fake Mailchimp API, '
           f'{smallest:,} contacts</text>',
           f'<text x="{left}" y="40" fill="#555">{machine}; batches of 500; dashed: the ceiling '
           f'(requests × 500 / latency)</text>']

    def x_of(panel_x, latency):
        i = latencies.index(latency)
        return panel_x + 20 + i * (panel_w - 40) / max(1, len(latencies) - 1)

    def panel(panel_x, title, y_of, ticks, label):
        out.append(f'<text x="{panel_x}" y="{top - 2}" font-weight="bold">{title}</text>')
        out.append(f'<rect x="{panel_x}" y="{top + 6}" width="{panel_w}" height="{plot_h}" fill="none" stroke="#ccc"/>')
        for value in ticks:
            y = y_of(value)
            out.append(f'<line x1="{panel_x}" x2="{panel_x + panel_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{panel_x - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{label(value)}</text>')
        for latency in latencies:
            x = x_of(panel_x, latency)
            out.append(f'<text x="{x:.1f}" y="{top + 6 + plot_h + 16}" text-anchor="middle" fill="#555">{latency} ms</text>')
        out.append(f'<text x="{panel_x + panel_w / 2}" y="{top + 6 + plot_h + 34}" text-anchor="middle" '
                   f'fill="#555">latency per request</text>')

    def line(panel_x, y_of, key, concurrency, dashed=False):
        points = [(x_of(panel_x, r["latency"]), y_of(r[key])) for r in sorted(rows, key=lambda r: r["latency"])
                  if r["concurrency_n"] == concurrency]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dash = ' stroke-dasharray="5,4" stroke-opacity="0.6"' if dashed else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[concurrency]}" stroke-width="2"{dash}/>')
        if not dashed:
            for x, y in points:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{COLORS[concurrency]}"/>')

    low, high = 1_000, 300_000
    rate_y = lambda v: top + 6 + plot_h * (1 - (math.log10(max(v, low)) - math.log10(low)) /
                                          (math.log10(high) - math.log10(low)))
    panel(left, "contacts per second (log scale)", rate_y, [1_000, 10_000, 100_000],
          lambda v: f"{v // 1000:,}k")
    ratio_x = left + panel_w + gap
    ratio_y = lambda v: top + 6 + plot_h * (1 - v)
    panel(ratio_x, "share of the ceiling", ratio_y, [0, 0.2, 0.4, 0.6, 0.8, 1.0], lambda v: f"{v:.0%}")
    for concurrency in COLORS:
        line(left, rate_y, "ceiling", concurrency, dashed=True)
        line(left, rate_y, "rate", concurrency)
        line(ratio_x, ratio_y, "ratio", concurrency)
    for i, (concurrency, name) in enumerate([(5, "5 requests (default)"), (10, "10 requests")]):
        x = left + i * 190
        y = height - 12
        out.append(f'<line x1="{x}" x2="{x + 22}" y1="{y - 4}" y2="{y - 4}" stroke="{COLORS[concurrency]}" stroke-width="3"/>')
        out.append(f'<text x="{x + 28}" y="{y}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def median_run(runs, *args, **kwargs):
    """The run `runs` times; each figure is the median over the runs."""
    results = [run(*args, **kwargs) for _ in range(runs)]
    keys = [k for k, v in results[0].items() if isinstance(v, (int, float))]
    median = dict(results[0])
    for key in keys:
        median[key] = statistics.median(r[key] for r in results)
    median["ratios"] = sorted(r["ratio"] for r in results)
    return median


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 records only, one run each")
    parser.add_argument("--sizes", default="200000,1000000", help="record counts of the upsert rows")
    parser.add_argument("--runs", type=int, default=None, help="runs per row (the median is shown; 3, or 1 with --quick)")
    parser.add_argument("--latencies", default="20,100,500", help="per-request latencies in ms")
    parser.add_argument("--per-contact", type=int, default=2000, help="contacts in the per-contact rows (0: none)")
    parser.add_argument("--chart", default=os.path.join(ROOT, "docs", "images", "benchmark.svg"),
                        help="where to draw the chart (SVG)")
    args = parser.parse_args()
    sizes = [200_000] if args.quick else [int(x) for x in args.sizes.split(",")]
    runs = args.runs or (1 if args.quick else 3)
    latencies = [int(x) for x in args.latencies.split(",")]

    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--workspace", "--bins"], cwd=ROOT, check=True)
    machine = f"{cpu_model()}, {os.cpu_count()} cores"
    print(f"machine: {machine}; release build; batch size {BATCH}; median of {runs} run(s) per row")
    rows = []
    header = ("latency", "records", "requests", "records/s", "ceiling/s", "ratio (runs)", "peak in flight",
              "first write s", "connector CPU s", "µs/record", "peak RSS MiB", "fake CPU share")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))

    def show(r, label, records, unit=""):
        ratios = ", ".join(f"{x:.1%}" for x in r["ratios"])
        ceiling = "—" if math.isinf(r["ceiling"]) else f"{r['ceiling']:,.0f}{unit}"
        ratio = "—" if math.isinf(r["ceiling"]) else f"{r['ratio']:.1%} ({ratios})"
        print(
            f"| {label} | {records:,} | {r['concurrency']} | {r['rate']:,.0f}{unit} | {ceiling} | {ratio} "
            f"| {r['peak']:.0f} | {r['first_write']:.2f} | {r['cpu']:.1f} | {r['cpu_us']:.2f} | {r['rss_mb']:.0f} "
            f"| {r['fake_share']:.0%} |",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as work:
        inputs = {}
        for records in sorted(set(sizes + [1_000_000])):
            inputs[records] = os.path.join(work, f"records-{records}.jsonl")
            generate(records, inputs[records])
        # The connector's own CPU: nothing to wait for, so every microsecond is its work.
        r = median_run(runs, 1_000_000, inputs[1_000_000], 0, None, work)
        show(r, "0 ms (CPU)", 1_000_000)
        for records in sizes:
            for latency in latencies:
                for concurrency in (None, 10):
                    r = median_run(runs, records, inputs[records], latency, concurrency, work)
                    if r["states"] != records // 10_000:
                        sys.exit(f"expected {records // 10_000} states, got {r['states']}")
                    rows.append({**r, "records": records, "latency": latency, "concurrency_n": concurrency or 5})
                    show(r, f"{latency} ms", records)
        if args.per_contact:
            n = args.per_contact
            seed = os.path.join(work, "seed.jsonl")
            write_lines(seed, contact_records(n, tags=["hp:old"]))
            deletions = os.path.join(work, "deletions.jsonl")
            write_lines(deletions, contact_records(n, _ab_cdc_deleted_at="2026-11-29T00:00:00Z"))
            retag = os.path.join(work, "retag.jsonl")
            write_lines(retag, contact_records(n, tags=["hp:new"]))
            per_contact = [
                ("archive", deletions, {"on_delete": "archive"}),
                ("owned tag removed", retag, {"tag_mode": "owned", "owned_tag_prefix": "hp:"}),
            ]
            for label, path, settings in per_contact:
                for concurrency in (None, 10):
                    r = median_run(runs, n, path, 100, concurrency, work, settings=settings, seed_path=seed)
                    show(r, f"100 ms, {label}", n, unit=" calls")
    write_chart(args.chart, rows, machine)
    print(f"chart: {os.path.relpath(args.chart, ROOT)}")


if __name__ == "__main__":
    main()
