#!/usr/bin/python3
"""Reads the raw outputs bench/serving/run left in its work directory, verifies them, prints the
table of ratios and writes the results as JSON.

  report.py --work DIR --json-out FILE [--check]
  report.py --h2load-latency LOG     LOG.json <- p50/p99 of an h2load --log-file (run calls this
                                     after each round, then may delete the log)

Work directory layout (written by `run`):
  meta.json                      run configuration and machine state
  grpc_check_<peer>.json         load_client.py check output (framed response size)
  grpc_<peer>_r<N>.txt           h2load stdout
  grpc_<peer>_r<N>.log[.json]    h2load per-request log (start us, status, duration us) / its
                                 percentiles
  rest_check_<peer>.json         load_client.py rest-check output (body size)
  rest_<peer>_r<N>.txt           wrk stdout; its done() hook prints one "RESULT {json}" line
  <proto>_<peer>_r<N>.cpu.json   CPU seconds the server used during that measurement, and the
                                 fraction of all cores busy meanwhile
  digits_model.json              inferd-run --bench on the digits model, batch 1, 1 thread

The digits ratios include the model's compute, which the bare peers do not do. To say how much of
the gap is that, the report also gives a ceiling: the ratio inferd would reach if serving cost
nothing beyond the model, i.e. bare's machine CPU per request (all cores, client included) over
that plus the model's time per image.
  resnet_serving_r<N>.json       load_client.py load output
  resnet_run_r<N>.json           inferd-run --bench --json output
  resnet_batches_r<N>.json       inferd_batch_size sum and count from the server's metrics

Per peer, the best round (highest throughput) is kept, with that round's latency percentiles;
the ratio is best over best. Ratios within each round (both sides back to back, so under the
same machine load) are reported as well.
A measurement that fails verification (h2load errors, fewer DATA bytes than N framed answers,
wrk non-2xx or socket errors, gRPC errors in the load client) is reported invalid and makes the
exit status 1. --check also fails when a ratio is below its target.
"""

import glob
import json
import os
import re
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import benchlib  # noqa: E402
from benchlib import read_json, report_arguments  # noqa: E402


TARGETS = {"grpc": 0.6, "rest": 0.6, "resnet": 0.85}
PEERS = ("inferd", "bare")
CORES = os.cpu_count() or 1


def rounds_of(work, pattern):
    def key(p):
        return int(re.search(r"_r(\d+)\.", p).group(1))
    return sorted(glob.glob(os.path.join(work, pattern)), key=key)


def parse_h2load(txt_path, framed_bytes):
    r, problems = benchlib.parse_h2load(txt_path, framed_bytes)
    return r if problems is None else benchlib.finish_result(r, problems)


def parse_wrk(txt_path, body_bytes):
    with open(txt_path) as f:
        text = f.read()
    r = {"file": os.path.basename(txt_path), "valid": False}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    res = re.search(r"^RESULT (\{.*\})$", text, re.M)
    if not (rps and res):
        r["problem"] = "wrk output not understood"
        return r
    s = json.loads(res.group(1))
    r.update(req_per_s=float(rps.group(1)), requests=s["requests"], bytes=s["bytes"],
             p50_ms=round(s["p50_us"] / 1000.0, 3), p99_ms=round(s["p99_us"] / 1000.0, 3),
             errors={k: s[k] for k in ("status", "connect", "read", "write", "timeout")})
    problems = []
    if s["status"]:
        problems.append("%d non-2xx answers" % s["status"])
    if s["connect"] or s["read"] or s["write"] or s["timeout"]:
        problems.append("socket errors %s" % r["errors"])
    per = s["bytes"] / max(1, s["requests"])
    r["bytes_per_response"] = round(per, 1)
    # Status line and a few headers come on top of the body; an error body would be shorter.
    if not body_bytes + 40 <= per <= body_bytes + 400:
        problems.append("%.1f bytes per answer, body alone is %d" % (per, body_bytes))
    r["valid"] = not problems
    if problems:
        r["problem"] = "; ".join(problems)
    return r


def add_server_cpu(r, txt_path):
    """CPU time the server used per answer during the measurement (run's OUT.cpu.json)."""
    cpu_path = txt_path[:-4] + ".cpu.json"
    if os.path.exists(cpu_path) and r.get("requests"):
        cpu = read_json(cpu_path)
        r["server_cpu_s"] = cpu["server_cpu_s"]
        r["server_cpu_us_per_request"] = round(r["server_cpu_s"] * 1e6 / r["requests"], 1)
        if "machine_busy" in cpu and r.get("req_per_s"):
            r["machine_busy"] = cpu["machine_busy"]
            r["machine_cpu_us_per_request"] = round(
                cpu["machine_busy"] * CORES * 1e6 / r["req_per_s"], 1)
    return r


def round_ratios(ours, our_key, peers, peer_key):
    """Ratio within each round (the two sides ran back to back, so under the same machine load)."""
    return [round(o[our_key] / p[peer_key], 3) if o.get("valid") and p.get("valid") else None
            for o, p in zip(ours, peers)]


def best(rounds, key):
    valid = [r for r in rounds if r.get("valid")]
    return max(valid, key=lambda r: r[key]) if valid else None


def protocol_section(work, proto, parse, size_key):
    sec = {"target": TARGETS[proto]}
    for peer in PEERS:
        check_path = os.path.join(work, "%s_check_%s.json" % (proto, peer))
        if not os.path.exists(check_path):
            return None
        check = read_json(check_path)
        rounds = [add_server_cpu(parse(p, check[size_key]), p)
                  for p in rounds_of(work, "%s_%s_r*.txt" % (proto, peer))]
        sec[peer] = {"check": check, "rounds": rounds, "best": best(rounds, "req_per_s")}
    sec["round_ratios"] = round_ratios(sec["inferd"]["rounds"], "req_per_s",
                                       sec["bare"]["rounds"], "req_per_s")
    if sec["inferd"]["best"] and sec["bare"]["best"]:
        sec["ratio"] = round(sec["inferd"]["best"]["req_per_s"] / sec["bare"]["best"]["req_per_s"], 3)
        sec["meets_target"] = sec["ratio"] >= sec["target"]
        model_path = os.path.join(work, "digits_model.json")
        bare_cpu = sec["bare"]["best"].get("machine_cpu_us_per_request")
        if os.path.exists(model_path) and bare_cpu:
            model_us = read_json(model_path)["median_ms"] * 1000
            sec["model_us_per_image"] = round(model_us, 1)
            sec["ratio_ceiling_model_only"] = round(bare_cpu / (bare_cpu + model_us), 3)
    return sec


def resnet_section(work):
    serving = [read_json(p) for p in rounds_of(work, "resnet_serving_r*.json")]
    runs = [read_json(p) for p in rounds_of(work, "resnet_run_r*.json")]
    if not serving and not runs:
        return None
    for path, s in zip(rounds_of(work, "resnet_serving_r*.json"), serving):
        batches_path = path.replace("resnet_serving_", "resnet_batches_")
        if os.path.exists(batches_path):
            b = read_json(batches_path)
            if b.get("count"):
                s["batches"] = int(b["count"])
                s["mean_batch_size"] = round(b["sum"] / b["count"], 2)
        s["valid"] = s.get("errors", 1) == 0 and s.get("requests", 0) > 0
        if not s["valid"]:
            s["problem"] = "%s errors, %s answers" % (s.get("errors"), s.get("requests"))
    for r in runs:
        r["valid"] = r.get("items_per_s", 0) > 0
    sec = {"target": TARGETS["resnet"], "serving": {"rounds": serving, "best": best(serving, "images_per_s")},
           "inferd_run": {"rounds": runs, "best": best(runs, "items_per_s")}}
    sec["round_ratios"] = round_ratios(serving, "images_per_s", runs, "items_per_s")
    if sec["serving"]["best"] and sec["inferd_run"]["best"]:
        sec["ratio"] = round(sec["serving"]["best"]["images_per_s"] /
                             sec["inferd_run"]["best"]["items_per_s"], 3)
        sec["meets_target"] = sec["ratio"] >= sec["target"]
    return sec


def fmt_lat(r):
    if not r or r.get("p50_ms") is None:
        return "-"
    return "%.2f / %.2f" % (r["p50_ms"], r["p99_ms"])


def fmt_cpu(r):
    return "%.1f" % r["server_cpu_us_per_request"] if r and "server_cpu_us_per_request" in r else "-"


def print_table(result):
    rows = []
    ceilings = []
    for proto, title in (("grpc", "gRPC Predict, digits"), ("rest", "REST :predict, digits")):
        sec = result.get(proto)
        if not sec:
            continue
        i, b = sec["inferd"]["best"], sec["bare"]["best"]
        rows.append((title + " (req/s)", "%.0f" % i["req_per_s"] if i else "invalid",
                     "bare: %.0f" % b["req_per_s"] if b else "bare: invalid",
                     sec.get("ratio"), sec["target"], sec.get("meets_target")))
        rows.append(("  latency p50 / p99 ms", fmt_lat(i), "bare: " + fmt_lat(b), None, None, None))
        rows.append(("  server CPU us / request", fmt_cpu(i), "bare: " + fmt_cpu(b), None, None, None))
        if "ratio_ceiling_model_only" in sec:
            rows.append(("  model us/image; all-core CPU us/req", "model: %.1f" %
                         sec["model_us_per_image"], "bare: %.1f" %
                         b["machine_cpu_us_per_request"], None, None, None))
            ceilings.append((title, sec["ratio_ceiling_model_only"]))
    sec = result.get("resnet")
    if sec:
        s, r = sec["serving"]["best"], sec["inferd_run"]["best"]
        rows.append(("ResNet-50 batched serving (img/s)", "%.2f" % s["images_per_s"] if s else "invalid",
                     "inferd-run b8: %.2f" % r["items_per_s"] if r else "inferd-run: invalid",
                     sec.get("ratio"), sec["target"], sec.get("meets_target")))
        rows.append(("  latency p50 / p99 ms", fmt_lat(s),
                     "batch median: %.1f" % r["median_ms"] if r else "-", None, None, None))
        if s and "mean_batch_size" in s:
            rows.append(("  mean batch size (server metrics)", "%.2f" % s["mean_batch_size"], "8",
                         None, None, None))
    print()
    print("%-38s %-16s %-24s %6s %7s" % ("measurement", "inferd", "peer", "ratio", "target"))
    for name, a, b, ratio, target, ok in rows:
        tail = ""
        if ratio is not None:
            tail = "%6.3f  >= %.2f  %s" % (ratio, target, "ok" if ok else "BELOW TARGET")
        print("%-38s %-16s %-24s %s" % (name, a, b, tail))
    for key, title in (("grpc", "gRPC"), ("rest", "REST"), ("resnet", "ResNet-50")):
        if key in result:
            print("%s ratio per round: %s" % (title, ", ".join(
                "-" if r is None else "%.3f" % r for r in result[key]["round_ratios"])))
    for title, c in ceilings:
        print("%s: ratio ceiling %.3f if inferd cost nothing but the digits model" % (title, c))
    print()


def main():
    a = report_arguments(__doc__, "exit 1 when a ratio is below its target")
    if a is None:
        return 0
    result = {"meta": read_json(os.path.join(a.work, "meta.json"))}
    for name, sec in (("grpc", protocol_section(a.work, "grpc", parse_h2load, "framed_bytes")),
                      ("rest", protocol_section(a.work, "rest", parse_wrk, "body_bytes")),
                      ("resnet", resnet_section(a.work))):
        if sec:
            result[name] = sec
    print_table(result)
    invalid = []
    for name in ("grpc", "rest"):
        for peer in PEERS:
            for r in result.get(name, {}).get(peer, {}).get("rounds", []):
                if not r["valid"]:
                    invalid.append("%s %s %s: %s" % (name, peer, r["file"], r.get("problem")))
    for r in result.get("resnet", {}).get("serving", {}).get("rounds", []):
        if not r["valid"]:
            invalid.append("resnet serving: %s" % r.get("problem"))
    benchlib.write_results(result, a.json_out, invalid)
    below = [n for n in ("grpc", "rest", "resnet") if result.get(n, {}).get("meets_target") is False]
    if invalid:
        return 1
    if a.check and below:
        print("below target: %s" % ", ".join(below), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
