#!/usr/bin/python3
"""Reads what bench/gateway/run left in its work directory, verifies every measurement, prints
the comparison of inferd-gateway with nginx and HAProxy, and writes it as JSON.

  report.py --work DIR --json-out FILE [--check]
  report.py --h2load-latency LOG     LOG.json <- percentiles of an h2load --log-file (run calls
                                     this after each measurement, then may delete the log)

Work directory layout (written by `run`):
  meta.json                    run configuration, tool versions, machine state
  rate.json                    {"rate": R}: the fixed request rate of the latency phase
  check_<peer>.json            probe.py check: framed size of one verified answer
  closed_<peer>_r<N>.txt       h2load stdout, closed loop (-c/-m, -n sized to --seconds)
  rate_<peer>_r<N>.txt         h2load stdout, fixed rate R (--rps R/c per connection)
  <phase>_<peer>_r<N>.log.json latency percentiles from h2load's per-request log
  <phase>_<peer>_r<N>.cpu.json probe.py measure: core busy fractions, CPU of proxy, replicas
                               and h2load, CPU of anything else on the machine
Peers: direct (h2load to one replica, the baseline for added latency), gateway (inferd-gateway),
nginx, haproxy.

A measurement is valid when every request succeeded with HTTP 2xx and h2load counted exactly
requests x framed-answer bytes of DATA (h2load counts a gRPC error, an HTTP 200 whose trailers
carry the error, as a success: only the bytes tell). Invalid measurements make the exit status
1; --check also fails when a target is missed.

A round is noisy when other processes used more than NOISE_LIMIT cores on the cores it depended
on (the proxy's, and that of h2load and the replicas); only clean rounds count where a peer has
any. Throughput: per peer the best closed-loop round; latency under load: that round's
percentiles, added latency: those minus direct's best round's. Latency at a fixed rate: median
over rounds of p50, p99 (p99.9); added latency: those minus direct's medians.
Targets: inferd-gateway's throughput >= 0.8 x the better peer's (the one with more req/s), and
its added p99 at the fixed rate no worse than that peer's (closed-loop latency is in-flight /
throughput by Little's law, so it repeats the throughput comparison; the fixed rate is where
added latency means the cost of the hop). Where a peer's own core was not saturated (the core
of h2load and the replicas was), measured throughput says little about the peer: the report
then also compares throughput per proxy core, 1e6 / (busy microseconds of the proxy's core per
request), with the same 0.8 target (--check applies all three).
"""

import glob
import os
import re
import statistics
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import benchlib  # noqa: E402
from benchlib import read_json, report_arguments  # noqa: E402


PEERS = ("direct", "gateway", "nginx", "haproxy")
PROXIES = ("gateway", "nginx", "haproxy")
NAMES = {"direct": "direct (1 replica)", "gateway": "inferd-gateway", "nginx": "nginx",
         "haproxy": "haproxy"}
RATIO_TARGET = 0.8
NOISE_LIMIT = 0.1  # cores others may use on the cores a measurement depends on; more: noisy


def rounds_of(work, phase, peer):
    paths = glob.glob(os.path.join(work, "%s_%s_r*.txt" % (phase, peer)))
    return sorted(paths, key=lambda p: int(re.search(r"_r(\d+)\.txt$", p).group(1)))


def parse_h2load(txt_path, framed_bytes, proxy_cpu):
    r, problems = benchlib.parse_h2load(txt_path, framed_bytes)
    r["round"] = int(re.search(r"_r(\d+)\.txt$", txt_path).group(1))
    if problems is None:
        return r
    base = txt_path[:-4]
    total = r["requests"]
    if os.path.exists(base + ".cpu.json"):
        cpu = read_json(base + ".cpu.json")
        r["cpu"] = cpu
        if total:
            r["proxy_cpu_us_per_request"] = round(cpu["proxy_cpu_s"] * 1e6 / total, 1)
            r["replicas_cpu_us_per_request"] = round(cpu["replicas_cpu_s"] * 1e6 / total, 1)
            core = cpu["core_busy"].get(proxy_cpu)
            if core is not None:
                r["proxy_core_busy"] = core
                r["proxy_core_us_per_request"] = round(core * cpu["wall_s"] * 1e6 / total, 1)
    if "p50_ms" not in r:
        problems.append("no latency log")
    return benchlib.finish_result(r, problems)


def mark_noise(r, meta, peer):
    """How much CPU others used on the cores this measurement depended on, in cores: the proxy's
    core (busy time it did not use itself) and the core of h2load and the replicas (where they
    share one, as by default; otherwise the whole machine's unexplained busy time)."""
    cpu = r.get("cpu")
    if not cpu:
        r["noise_cores"], r["clean"] = None, False
        return
    wall, busy = max(cpu["wall_s"], 1e-3), cpu["core_busy"]
    noise = []
    proxy_core = "cpu%s" % meta["proxy_cpu"]
    if peer != "direct" and proxy_core in busy:
        noise.append(busy[proxy_core] - cpu["proxy_cpu_s"] / wall)
    load_core = "cpu%s" % meta["client_cpu"]
    if str(meta["replica_cpus"]) == str(meta["client_cpu"]) and load_core in busy:
        noise.append(busy[load_core] - (cpu["replicas_cpu_s"] + cpu["client_cpu_s"]) / wall)
    else:
        noise.append(cpu["others_cores"])
    r["noise_cores"] = round(max(0.0, max(noise)), 3)
    r["clean"] = r["noise_cores"] <= NOISE_LIMIT


def usable(rounds):
    """Valid rounds; only the clean ones where there are any."""
    valid = [r for r in rounds if r["valid"]]
    return [r for r in valid if r["clean"]] or valid


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def added(r, base, key):
    return round(r[key] - base[key], 3) if r and base else None


def analyse(work):
    meta = read_json(os.path.join(work, "meta.json"))
    proxy_cpu = "cpu%s" % meta.get("proxy_cpu", 0)
    rate = read_json(os.path.join(work, "rate.json"))["rate"] if os.path.exists(
        os.path.join(work, "rate.json")) else None
    checks = {}
    for peer in PEERS:
        path = os.path.join(work, "check_%s.json" % peer)
        if os.path.exists(path):
            checks[peer] = read_json(path)
    if "direct" not in checks:
        raise ValueError("no verified direct answer (check_direct.json)")
    framed = checks["direct"]["framed_bytes"]
    result = {"meta": meta, "rate": rate, "framed_answer_bytes": framed, "peers": {}}
    rounds = {}
    for peer in PEERS:
        if peer not in checks:
            continue
        if checks[peer]["framed_bytes"] != framed:
            raise ValueError("%s answered %d framed bytes, direct %d" %
                             (peer, checks[peer]["framed_bytes"], framed))
        rounds[peer] = {phase: {r["round"]: r for r in (
            parse_h2load(p, framed, proxy_cpu) for p in rounds_of(work, phase, peer))}
            for phase in ("closed", "rate")}
    for peer, phases in rounds.items():
        for r in list(phases["closed"].values()) + list(phases["rate"].values()):
            mark_noise(r, meta, peer)
    for peer, phases in rounds.items():  # direct first: the others' added latency needs it
        closed = phases["closed"]
        valid = usable(closed.values())
        best = max(valid, key=lambda r: r["req_per_s"]) if valid else None
        sec = {"closed": {"rounds": list(closed.values()), "best": best}}
        base = result["peers"].get("direct", {})
        if best and peer != "direct":
            sec["closed"]["added_p50_ms"] = added(best, base["closed"]["best"], "p50_ms")
            sec["closed"]["added_p99_ms"] = added(best, base["closed"]["best"], "p99_ms")
        ok = usable(phases["rate"].values())
        sec["rate"] = {"rounds": list(phases["rate"].values())}
        if ok:
            sec["rate"].update(
                rounds_used=[r["round"] for r in ok], all_noisy=not any(r["clean"] for r in ok),
                achieved_req_per_s=median([r["req_per_s"] for r in ok]),
                p50_ms=median([r["p50_ms"] for r in ok]), p99_ms=median([r["p99_ms"] for r in ok]),
                p999_ms=median([r["p999_ms"] for r in ok]),
                proxy_cpu_us_per_request=median([r.get("proxy_cpu_us_per_request") for r in ok]),
                proxy_core_us_per_request=median([r.get("proxy_core_us_per_request") for r in ok]))
            if peer != "direct" and base.get("rate", {}).get("p50_ms") is not None:
                for key in ("p50_ms", "p99_ms"):
                    sec["rate"]["added_" + key] = round(sec["rate"][key] - base["rate"][key], 3)
        result["peers"][peer] = sec

    def best_rps(peer):
        b = result["peers"].get(peer, {}).get("closed", {}).get("best")
        return b["req_per_s"] if b else None

    peers = [p for p in ("nginx", "haproxy") if best_rps(p) is not None]
    if best_rps("gateway") is not None and peers:
        better = max(peers, key=best_rps)
        t = {"better_peer": better, "ratio": round(best_rps("gateway") / best_rps(better), 3),
             "ratio_target": RATIO_TARGET}
        t["ratio_ok"] = t["ratio"] >= RATIO_TARGET
        t["peer_core_busy"] = result["peers"][better]["closed"]["best"].get("proxy_core_busy")
        # Throughput one core would carry: what the comparison means when a peer's own core was
        # not the bottleneck (the client/replica core was).
        cap = {p: 1e6 / result["peers"][p]["closed"]["best"]["proxy_core_us_per_request"]
               for p in ["gateway"] + peers
               if result["peers"][p]["closed"]["best"].get("proxy_core_us_per_request")}
        if "gateway" in cap and len(cap) > 1:
            best_core = max((p for p in cap if p != "gateway"), key=cap.get)
            t["per_core"] = {"req_per_s_per_core": {p: round(v) for p, v in cap.items()},
                             "better_peer": best_core,
                             "ratio": round(cap["gateway"] / cap[best_core], 3)}
            t["per_core"]["ratio_ok"] = t["per_core"]["ratio"] >= RATIO_TARGET
        g, b = result["peers"]["gateway"]["rate"], result["peers"][better]["rate"]
        if g.get("added_p99_ms") is not None and b.get("added_p99_ms") is not None:
            t["gateway_added_p99_ms"] = g["added_p99_ms"]
            t["peer_added_p99_ms"] = b["added_p99_ms"]
            t["added_p99_ok"] = g["added_p99_ms"] <= b["added_p99_ms"]
        gc, bc = g.get("proxy_cpu_us_per_request"), b.get("proxy_cpu_us_per_request")
        if gc and bc:
            t["cpu_efficiency_ratio"] = round(bc / gc, 3)  # >1: the gateway costs less CPU
        result["targets"] = t
    return result


def fmt(v, spec="%.2f"):
    return "-" if v is None else spec % v


def print_report(result):
    meta, rate = result["meta"], result["rate"]
    print()
    print("Closed loop: h2load -c %s -m %s, best of %s rounds of %s s; proxy pinned to cpu%s, "
          "h2load to cpu%s, replicas to cpu%s.\nus/req: busy time of the proxy's core per request; "
          "replicas: their CPU per request; noise: cores others used" % (meta["clients"], meta["streams"], meta["rounds"],
                                                   meta["seconds"], meta["proxy_cpu"],
                                                   meta["client_cpu"], meta["replica_cpus"]))
    print("%-20s %9s %17s %17s %10s %8s %8s %6s" % (
        "peer", "req/s", "p50 / p99 ms", "added p50/p99", "proxy core", "us/req", "replicas", "noise"))
    notes = []
    for peer in PEERS:
        sec = result["peers"].get(peer)
        if not sec:
            continue
        b = sec["closed"]["best"]
        if not b:
            print("%-20s %9s" % (NAMES[peer], "invalid"))
            continue
        cpu = b.get("cpu", {})
        busy = b.get("proxy_core_busy") if peer != "direct" else None
        print("%-20s %9.0f %17s %17s %10s %8s %8s %6s" % (
            NAMES[peer], b["req_per_s"], "%.2f / %.2f" % (b["p50_ms"], b["p99_ms"]),
            "-" if peer == "direct" else "%s / %s" % (fmt(sec["closed"].get("added_p50_ms")),
                                                      fmt(sec["closed"].get("added_p99_ms"))),
            "-" if busy is None else "%.0f%%" % (busy * 100),
            "-" if peer == "direct" else fmt(b.get("proxy_core_us_per_request"), "%.1f"),
            fmt(b.get("replicas_cpu_us_per_request"), "%.1f"), fmt(b.get("noise_cores"), "%.2f")))
        if peer in PROXIES and busy is not None and busy < 0.9:
            other = [v for c, v in cpu.get("core_busy", {}).items()
                     if c != "cpu%s" % meta["proxy_cpu"]]
            notes.append("%s's core was %.0f%% busy at its best: the client/replica core (%s busy) "
                         "limited it, not %s itself" % (NAMES[peer], busy * 100,
                                                        "/".join("%.0f%%" % (v * 100) for v in other),
                                                        NAMES[peer]))
        if not b.get("clean"):
            notes.append("%s: every closed-loop round was noisy (others used %.2f cores where it "
                         "ran in its best)" % (NAMES[peer], b.get("noise_cores") or 0))
    if rate:
        print()
        print("Fixed rate: %s req/s (h2load --rps %s per connection), median of rounds" %
              (rate, rate // int(meta["clients"])))
        print("%-20s %9s %25s %17s %12s %7s" % ("peer", "req/s", "p50 / p99 / p99.9 ms",
                                               "added p50/p99", "proxy us/req", "rounds"))
        for peer in PEERS:
            sec = result["peers"].get(peer)
            if not sec:
                continue
            r = sec["rate"]
            if r.get("p50_ms") is None:
                print("%-20s %9s" % (NAMES[peer], "invalid"))
                continue
            print("%-20s %9.0f %25s %17s %12s %7s" % (
                NAMES[peer], r["achieved_req_per_s"],
                "%.3f / %.3f / %.3f" % (r["p50_ms"], r["p99_ms"], r["p999_ms"]),
                "-" if peer == "direct" else "%s / %s" % (fmt(r.get("added_p50_ms"), "%.3f"),
                                                          fmt(r.get("added_p99_ms"), "%.3f")),
                "-" if peer == "direct" else fmt(r.get("proxy_cpu_us_per_request"), "%.1f"),
                "%d/%d" % (len(r["rounds_used"]), len(r["rounds"]))))
            if r["all_noisy"]:
                notes.append("%s: every fixed-rate round was noisy (other load on its cores)" %
                             NAMES[peer])
            if r["achieved_req_per_s"] < 0.95 * rate:
                notes.append("%s did not sustain %d req/s (%.0f)" % (NAMES[peer], rate,
                                                                    r["achieved_req_per_s"]))
    t = result.get("targets")
    if t:
        print()
        print("inferd-gateway / %s throughput: %.3f (target >= %.2f): %s" % (
            NAMES[t["better_peer"]], t["ratio"], t["ratio_target"],
            "ok" if t["ratio_ok"] else "BELOW TARGET"))
        pc = t.get("per_core")
        if pc:
            print("per core (req/s one proxy core carries = 1e6 / core us per request: %s): "
                  "inferd-gateway / %s %.3f (target >= %.2f): %s" % (
                      ", ".join("%s %d" % (NAMES[p], v) for p, v in pc["req_per_s_per_core"].items()),
                      NAMES[pc["better_peer"]], pc["ratio"], t["ratio_target"],
                      "ok" if pc["ratio_ok"] else "BELOW TARGET"))
        if "added_p99_ok" in t:
            print("added p99 at %s req/s: inferd-gateway %.3f ms, %s %.3f ms: %s" % (
                rate, t["gateway_added_p99_ms"], NAMES[t["better_peer"]], t["peer_added_p99_ms"],
                "ok" if t["added_p99_ok"] else "BELOW TARGET"))
        if "cpu_efficiency_ratio" in t:
            print("proxy CPU per request at %s req/s, %s / inferd-gateway: %.3f (above 1: the "
                  "gateway is cheaper)" % (rate, NAMES[t["better_peer"]], t["cpu_efficiency_ratio"]))
    for n in notes:
        print("note: " + n)
    print()


def main():
    a = report_arguments(__doc__, "exit 1 when a target is missed")
    if a is None:
        return 0
    try:
        result = analyse(a.work)
    except (ValueError, OSError) as e:
        print("report.py: error: %s" % e, file=sys.stderr)
        return 1
    print_report(result)
    invalid = ["%s %s: %s" % (peer, r["file"], r.get("problem"))
               for peer, sec in result["peers"].items()
               for phase in ("closed", "rate") for r in sec[phase]["rounds"] if not r["valid"]]
    benchlib.write_results(result, a.json_out, invalid)
    if invalid:
        return 1
    t = result.get("targets", {})
    if a.check and t and (not t.get("ratio_ok") or t.get("added_p99_ok") is False or
                    t.get("per_core", {}).get("ratio_ok") is False):
        print("below target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
