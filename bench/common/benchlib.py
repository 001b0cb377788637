"""Helpers shared by the benchmarks in bench/: percentiles, h2load's per-request logs, gRPC
framing for h2load bodies, tool output as JSON. Standard library only."""
import argparse
import json
import math
import os
import re
import sys


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


def parse_h2load(txt_path, framed_bytes):
    """One h2load run of gRPC calls: its summary (txt_path), its latency (txt_path minus .txt
    plus .log.json, or the raw .log) and what is wrong with it. Returns (result, problems);
    problems is None when the summary is not understood (result then says so). Finish with
    finish_result() once the caller has added its own checks."""
    with open(txt_path) as f:
        text = f.read()
    r = {"file": os.path.basename(txt_path), "valid": False}
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    codes = re.search(r"status codes: (\d+) 2xx", text)
    data = re.search(r"\((\d+)\) data", text)
    if not (m and req and codes and data):
        r["problem"] = "h2load output not understood"
        return r, None
    total, _, done, ok, failed, errored, timeout = (int(x) for x in req.groups())
    r.update(req_per_s=float(m.group(3)), requests=total, succeeded=ok,
             data_bytes=int(data.group(1)), expected_data_bytes=total * framed_bytes)
    log_path = txt_path[:-4] + ".log"
    if os.path.exists(log_path + ".json"):
        r.update(read_json(log_path + ".json"))
    elif os.path.exists(log_path):
        r.update(h2load_latency(log_path))
    problems = []
    if ok != total or done != total or failed or errored or timeout:
        problems.append("%d of %d requests succeeded" % (ok, total))
    if int(codes.group(1)) != total:
        problems.append("%s of %d answers were HTTP 2xx" % (codes.group(1), total))
    # A gRPC error is an HTTP 200 with no message: only the DATA bytes tell it apart.
    if r["data_bytes"] != r["expected_data_bytes"]:
        problems.append("received %d DATA bytes, %d answers of %d bytes are %d" %
                        (r["data_bytes"], total, framed_bytes, r["expected_data_bytes"]))
    return r, problems


def finish_result(r, problems):
    """Marks a parsed run valid when nothing is wrong with it, else says what is."""
    r["valid"] = not problems
    if problems:
        r["problem"] = "; ".join(problems)
    return r


def write_results(result, json_out, invalid):
    """Writes a report's result (with its invalid measurements) as JSON to json_out, says where,
    and lists each invalid measurement on stderr."""
    result["invalid_measurements"] = invalid
    os.makedirs(os.path.dirname(os.path.abspath(json_out)), exist_ok=True)
    with open(json_out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("results: %s" % json_out)
    for line in invalid:
        print("INVALID: " + line, file=sys.stderr)


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
