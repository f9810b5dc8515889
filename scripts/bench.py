#!/usr/bin/env python3
"""End-to-end benchmark: the release binary syncs generated records to the fake Mailchimp API at
a fixed per-request latency, and the table shows how close it gets to Mailchimp's ceiling.

    ./scripts/bench.py            # 20/100/500 ms × 200,000/1,000,000 records × concurrency 5 (default) and 10
    ./scripts/bench.py --quick    # 200,000 records only

For each run: records/s; the ceiling (requests in flight × 500 contacts / latency); their ratio;
the peak number of requests the fake saw at once; the connector's CPU seconds, CPU per record and
peak resident memory; and the fake's own CPU, as a share of the run's wall time (so one can see
that the fake is not the bottleneck). Every record has its own email, so every request carries a
full batch of 500 contacts.
"""

import argparse
import json
import os
import platform
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


def generate(records, path):
    with open(path, "w") as out:
        subprocess.run(
            [os.path.join(BIN, "fake-mailchimp"), "generate", "--records", str(records), "--state-every", "10000"],
            stdout=out,
            check=True,
        )


def run(records, input_path, latency_ms, concurrency, work):
    config = json.load(open(os.path.join(ROOT, "integration_tests", "sample_config.json")))
    if concurrency is not None:
        config["max_concurrent_requests"] = concurrency
    config_path = os.path.join(work, "config.json")
    json.dump(config, open(config_path, "w"))
    fake, base_url = start_fake(latency_ms)
    try:
        fake_cpu_before = process_cpu_seconds(fake.pid)
        started = time.monotonic()
        with open(input_path) as stdin, open(os.path.join(work, "out.jsonl"), "w") as stdout:
            connector = subprocess.Popen(
                [os.path.join(BIN, "destination-mailchimp"), "write", "--config", config_path,
                 "--catalog", os.path.join(ROOT, "integration_tests", "configured_catalog.json")],
                stdin=stdin,
                stdout=stdout,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "MAILCHIMP_API_BASE_URL": base_url},
            )
            _, status, usage = os.wait4(connector.pid, 0)
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
    ceiling = in_flight * BATCH / (latency_ms / 1000)
    rate = records / wall
    return {
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 records only")
    parser.add_argument("--latencies", default="20,100,500", help="per-request latencies in ms")
    args = parser.parse_args()
    sizes = [200_000] if args.quick else [200_000, 1_000_000]
    latencies = [int(x) for x in args.latencies.split(",")]

    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--workspace", "--bins"], cwd=ROOT, check=True)
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; release build; batch size {BATCH}")
    header = ("latency", "records", "requests", "records/s", "ceiling/s", "ratio", "peak in flight",
              "connector CPU s", "µs/record", "peak RSS MB", "fake CPU share")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    with tempfile.TemporaryDirectory() as work:
        for records in sizes:
            input_path = os.path.join(work, f"records-{records}.jsonl")
            generate(records, input_path)
            for latency in latencies:
                for concurrency in (None, 10):
                    r = run(records, input_path, latency, concurrency, work)
                    if r["states"] != records // 10_000:
                        sys.exit(f"expected {records // 10_000} states, got {r['states']}")
                    print(
                        f"| {latency} ms | {records:,} | {r['concurrency']} | {r['rate']:,.0f} | {r['ceiling']:,.0f} "
                        f"| {r['ratio']:.1%} | {r['peak']} | {r['cpu']:.1f} | {r['cpu_us']:.2f} | {r['rss_mb']:.0f} "
                        f"| {r['fake_share']:.0%} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
