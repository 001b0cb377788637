#!/usr/bin/python3
"""Machine-side helpers of bench/gateway/run (Debian's /usr/bin/python3, standard library only;
protobuf encoding and decoding are done by `protoc`, which the build needs anyway).

  probe.py request --proto-dir proto --out BODY
      Writes the digits PredictRequest (model_spec.name "digits", input "image" DT_FLOAT
      [1,1,8,8], tensor_content of 64 x 0.5f: the request bench/serving sends) framed as one
      gRPC message (0x00, 4-byte big-endian length, message) for h2load and nghttp.
  probe.py check --proto-dir proto --body RESP --trailers VERBOSE_LOG
      Checks one answer fetched with nghttp: the body is one framed PredictResponse with
      outputs["probabilities"] of 10 floats, and the trailers say grpc-status 0. Prints one JSON
      line with the framed size every answer must have in h2load's DATA byte count.
  probe.py quiet --max-wait S [--threshold CORES]
      Waits until the machine is idle (all cores together busier than --threshold cores over
      half a second means someone else is running) or S seconds have passed. Prints the
      seconds waited and the last busy figure as JSON.
  probe.py measure --out PREFIX --proxy PID... --replicas PID... -- COMMAND...
      Runs COMMAND (h2load) with stdout and stderr to PREFIX.txt and writes PREFIX.cpu.json:
      wall seconds; each core's busy fraction; CPU seconds used meanwhile by the proxy (PIDs and
      their descendants), the replicas and the command itself; and `others_cores`, CPU the
      machine spent outside all of these (another build, say), in cores. Exits with the
      command's status.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from benchlib import frame  # noqa: E402


HZ = os.sysconf("SC_CLK_TCK")
PREDICT_PROTO = "tensorflow_serving/apis/predict.proto"


def protoc(proto_dir, mode, message_type, data):
    r = subprocess.run(["protoc", "-I", proto_dir, "--%s=%s" % (mode, message_type), PREDICT_PROTO],
                       input=data, capture_output=True, check=False)
    if r.returncode != 0:
        raise ValueError("protoc --%s failed: %s" % (mode, r.stderr.decode(errors="replace")))
    return r.stdout


def cmd_request(a):
    half = "\\000\\000\\000?"  # 0.5f, little-endian, in protobuf text escapes
    text = ('model_spec { name: "digits" }\n'
            'inputs { key: "image" value { dtype: DT_FLOAT tensor_shape { dim { size: 1 } '
            'dim { size: 1 } dim { size: 8 } dim { size: 8 } } tensor_content: "%s" } }\n'
            % (half * 64))
    message = protoc(a.proto_dir, "encode", "tensorflow.serving.PredictRequest", text.encode())
    with open(a.out, "wb") as f:
        f.write(frame(message))
    print(json.dumps({"request_bytes": len(message), "framed_bytes": len(message) + 5}))


def cmd_check(a):
    with open(a.body, "rb") as f:
        body = f.read()
    if len(body) < 5 or body[0] != 0 or int.from_bytes(body[1:5], "big") != len(body) - 5:
        raise ValueError("answer is not one uncompressed gRPC message (%d bytes)" % len(body))
    text = protoc(a.proto_dir, "decode", "tensorflow.serving.PredictResponse", body[5:]).decode()
    floats = re.findall(r"float_val: ([-0-9.e+]+)", text)
    if 'key: "probabilities"' not in text or len(floats) != 10:
        raise ValueError("answer is not a digits prediction:\n%s" % text[:500])
    if abs(sum(float(x) for x in floats) - 1) > 1e-3:
        raise ValueError("probabilities do not sum to 1: %s" % floats)
    with open(a.trailers) as f:
        verbose = f.read()
    status = re.findall(r"grpc-status: (\d+)", verbose)
    if status != ["0"]:
        raise ValueError("trailers carry grpc-status %s, want [0]" % status)
    print(json.dumps({"response_bytes": len(body) - 5, "framed_bytes": len(body)}))


def core_ticks():
    """{cpuN: (busy, total)} clock ticks since boot; steal time is neither busy nor ours."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if re.match(r"cpu\d+ ", line):
                v = [int(x) for x in line.split()[1:9]]
                user, nice, system, idle, iowait, irq, softirq, _ = v
                busy = user + nice + system + irq + softirq
                out[line.split()[0]] = (busy, busy + idle + iowait)
    return out


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_cpu_s(pids):
    """User + system CPU seconds of PIDS and all their descendants (those alive now)."""
    kids = children_map()
    seen, stack, total = set(), list(pids), 0
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        stack.extend(kids.get(p, []))
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / HZ


def cmd_quiet(a):
    start = time.monotonic()
    while True:
        t0 = core_ticks()
        time.sleep(0.5)
        t1 = core_ticks()
        busy = sum(t1[c][0] - t0[c][0] for c in t1) / HZ / 0.5
        waited = time.monotonic() - start
        if busy <= a.threshold or waited >= a.max_wait:
            print(json.dumps({"waited_s": round(waited, 1), "busy_cores": round(busy, 2)}))
            return 0


def cmd_measure(a):
    command = a.command[1:] if a.command and a.command[0] == "--" else a.command
    if not command:
        raise ValueError("no command to measure")
    t0, p0, r0 = core_ticks(), tree_cpu_s(a.proxy), tree_cpu_s(a.replicas)
    w0 = time.monotonic()
    with open(a.out + ".txt", "wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - w0
    t1, p1, r1 = core_ticks(), tree_cpu_s(a.proxy), tree_cpu_s(a.replicas)
    rc = os.waitstatus_to_exitcode(status)
    client = usage.ru_utime + usage.ru_stime
    busy_s = sum(t1[c][0] - t0[c][0] for c in t1) / HZ
    result = {
        "wall_s": round(wall, 3), "rc": rc,
        "core_busy": {c: round((t1[c][0] - t0[c][0]) / max(1, t1[c][1] - t0[c][1]), 3) for c in t1},
        "proxy_cpu_s": round(p1 - p0, 3), "replicas_cpu_s": round(r1 - r0, 3),
        "client_cpu_s": round(client, 3),
        "others_cores": round(max(0.0, busy_s - (p1 - p0) - (r1 - r0) - client) / max(wall, 1e-3), 3),
    }
    with open(a.out + ".cpu.json", "w") as f:
        json.dump(result, f)
    return rc


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("request")
    r.add_argument("--proto-dir", required=True)
    r.add_argument("--out", required=True)
    c = sub.add_parser("check")
    c.add_argument("--proto-dir", required=True)
    c.add_argument("--body", required=True)
    c.add_argument("--trailers", required=True)
    q = sub.add_parser("quiet")
    q.add_argument("--max-wait", type=float, required=True)
    q.add_argument("--threshold", type=float, default=0.15)
    m = sub.add_parser("measure")
    m.add_argument("--out", required=True)
    m.add_argument("--proxy", type=int, nargs="*", default=[])
    m.add_argument("--replicas", type=int, nargs="*", default=[])
    m.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    try:
        return {"request": cmd_request, "check": cmd_check, "quiet": cmd_quiet,
                "measure": cmd_measure}[a.cmd](a) or 0
    except (ValueError, OSError) as e:
        print("probe.py %s: error: %s" % (a.cmd, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
