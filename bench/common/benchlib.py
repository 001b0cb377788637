"""Helpers shared by the benchmarks in bench/: percentiles, h2load's per-request logs, gRPC
framing for h2load bodies, tool output as JSON. Standard library only."""
import argparse
import json
import math


def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    pos = q * (len(sorted_values) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def h2load_latency(log_path):
    """p50/p90/p99/p99.9 in ms from h2load's --log-file (start, status, duration in us)."""
    with open(log_path) as f:
        lat = sorted(int(line.split("\t")[2]) / 1000.0 for line in f if line.strip())
    return {"p50_ms": round(percentile(lat, 0.5), 3), "p90_ms": round(percentile(lat, 0.9), 3),
            "p99_ms": round(percentile(lat, 0.99), 3), "p999_ms": round(percentile(lat, 0.999), 3),
            "logged": len(lat)}


def frame(message):
    """One gRPC length-prefixed message (uncompressed), as h2load sends it."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def read_json(path):
    """A JSON document, or the last line of a file whose last line is one (tool output)."""
    with open(path) as f:
        text = f.read().strip()
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(text.splitlines()[-1])


def report_arguments(description, check_help):
    """The command line of a benchmark's report.py: --work DIR --json-out FILE [--check], or
    --h2load-latency LOG, which this handles itself (writes LOG.json) and then returns None."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work")
    p.add_argument("--json-out")
    p.add_argument("--check", action="store_true", help=check_help)
    p.add_argument("--h2load-latency", metavar="LOG")
    a = p.parse_args()
    if a.h2load_latency:
        with open(a.h2load_latency + ".json", "w") as f:
            json.dump(h2load_latency(a.h2load_latency), f)
        return None
    if not (a.work and a.json_out):
        p.error("--work and --json-out are required")
    return a
