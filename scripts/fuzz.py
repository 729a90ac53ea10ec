"""Fuzzing at scale, on demand: the SMPP roles with a million mutated PDUs, or a live gateway's
HTTP API with random requests.

  scripts/fuzz.py smpp --inputs 1000000 --seed 1
      Mutated valid PDUs (``tests/fuzzing/smpp_pdus.py``: bit flips, byte inserts and deletes, length
      rewrites, TLV splices, truncation) from a seeded ``random.Random``, each fed whole and in
      random chunks to a fresh connection of the customer-facing SMPP server or the SMSC-facing
      operator link (alternately), through the decoder and the field parsers each role uses.
      Prints inputs/s, how many of each outcome (reply command and status, call to the
      application, connection closed), and every crash (an exception, an error logged, replies
      that are not whole PDUs, a result that depends on the chunking): its input in hex and what
      went wrong. Exit 1 on any crash.

  scripts/fuzz.py http --requests 20000 --seed 1
      ``smsgw run`` on 127.0.0.1 free ports with a temporary SQLite store and two simulated
      operators (the shape of etc/gateway.toml), then random requests over raw sockets
      (``tests/fuzzing/http.py``: methods, the API's paths, query strings, headers, JSON-shaped
      bodies); meanwhile a second process times GET /healthz on its own connection every 50 ms.
      Every answer must parse as HTTP, be below 500, and carry SPEC §4's error body when 4xx.
      Prints the answers by status and the slowest probe. Exit 1 on any 5xx, unparsable or
      missing answer, or a probe over 100 ms (the reactor stalled).

Both are reproducible: the same --seed gives the same inputs. A crash found here replays in
``tests/unit/test_fuzz_smpp.py`` / ``tests/integration/test_http_fuzz.py`` with the same generator.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzzing import http as http_fuzz  # noqa: E402
from tests.fuzzing import smpp as smpp_fuzz  # noqa: E402
from tests.fuzzing import smpp_pdus  # noqa: E402
from tests.harness.net import free_port  # noqa: E402

SMSGW = str(ROOT / ".venv" / "bin" / "smsgw")
PROBE_EVERY = 0.05
STALL = 0.100
MAX_CRASHES_SHOWN = 20


# --- smpp ---------------------------------------------------------------------------------------------
def fuzz_smpp(inputs: int, seed: int) -> int:
    rng = random.Random(seed)
    rigs = (smpp_fuzz.ServerRig(), smpp_fuzz.ClientRig())
    kinds: Counter = Counter()
    crashes = 0
    started = time.perf_counter()
    for i in range(inputs):
        rig = rigs[i % 2]
        data = rig.prefix(rng) + smpp_pdus.stream(rng)
        run, problems = smpp_fuzz.check(rig, data, rng)
        kinds.update(smpp_fuzz.outcome_kinds(run))
        if problems:
            crashes += 1
            if crashes <= MAX_CRASHES_SHOWN:
                print(f"CRASH #{crashes} ({rig.role}, input {i}): {data.hex()}")
                print("\n".join(problems), flush=True)
        if (i + 1) % 100_000 == 0:
            print(f"  {i + 1} inputs, {(i + 1) / (time.perf_counter() - started):.0f}/s, "
                  f"{crashes} crashes", flush=True)
    elapsed = time.perf_counter() - started
    print(f"\nsmpp: {inputs} inputs (seed {seed}) in {elapsed:.1f} s: {inputs / elapsed:.0f} inputs/s,"
          f" each fed whole and cut, half to the server, half to the client")
    print("outcomes (replies by command and status, calls to the application, closes):")
    for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:>10}  {kind}")
    print(f"crashes: {crashes}")
    return 1 if crashes else 0


# --- http ---------------------------------------------------------------------------------------------
def _gateway(tmp: Path, port: int, metrics: int) -> subprocess.Popen:
    config = tmp / "gw.toml"
    config.write_text(http_fuzz.GATEWAY_CONFIG.format(http=port, metrics=metrics))
    log = open(tmp / "gw.log", "w")
    proc = subprocess.Popen([SMSGW, "run", "-c", str(config), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"smsgw run exited with {proc.returncode}:\n{(tmp / 'gw.log').read_text()}")
        try:
            if http_fuzz.exchange(port, http_fuzz.simple("GET", "/readyz"), 2.0)[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the gateway was not ready within 60 s")


def _probe(port: int, stop, out) -> None:
    """In a process of its own (so the fuzzer's own work cannot delay it): GET /healthz on one
    keep-alive connection every PROBE_EVERY seconds; sends back (count, latencies over STALL,
    max latency, failures)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    probe = http_fuzz.Probe(port)
    count, slow, worst, failures = 0, [], 0.0, []
    while not stop.is_set():
        started = time.time()
        try:
            latency = probe.once()
        except (OSError, ValueError) as exc:
            failures.append(f"{time.strftime('%H:%M:%S')}: {exc}")
            probe = http_fuzz.Probe(port)
            continue
        count += 1
        worst = max(worst, latency)
        if latency > STALL:
            slow.append((started, latency))
        time.sleep(max(0.0, PROBE_EVERY - latency))
    out.send((count, slow, worst, failures))


def fuzz_http(requests: int, seed: int, minutes: float) -> int:
    with tempfile.TemporaryDirectory(prefix="smsgw-fuzz-") as tmp:
        port, metrics = free_port(), free_port()
        gw = _gateway(Path(tmp), port, metrics)
        stop = multiprocessing.Event()
        ours, theirs = multiprocessing.Pipe()
        prober = multiprocessing.Process(target=_probe, args=(port, stop, theirs), daemon=True)
        prober.start()
        try:
            sent, statuses, problems, elapsed, timeline = _send(port, requests, seed, minutes)
        finally:
            stop.set()
            probes = ours.recv() if ours.poll(10) else (0, [], 0.0, ["the probe did not report"])
            prober.join(5)
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(30)
            except subprocess.TimeoutExpired:
                gw.kill()
                gw.wait()
            log_tail = (Path(tmp) / "gw.log").read_text()[-3000:]
    return _report_http(seed, sent, statuses, problems, elapsed, probes, timeline, log_tail)


def _send(port: int, requests: int, seed: int, minutes: float):
    rng = random.Random(seed)
    statuses: Counter = Counter()
    problems: list[str] = []
    started = time.perf_counter()
    deadline = started + minutes * 60
    sent = 0
    timeline: list[tuple[float, float, bytes]] = []  # (sent at, answered at, request line)
    while sent < requests and time.perf_counter() < deadline:
        request = http_fuzz.request(rng)
        sent += 1
        began = time.time()
        try:
            answer = http_fuzz.exchange(port, request.data, 10.0)
        except (OSError, ValueError) as exc:
            statuses["no answer"] += 1
            problems.append(f"no answer ({exc}) to {request.data[:3000]!r}")
            continue
        timeline.append((began, time.time(), request.data.split(b"\r\n", 1)[0][:120]))
        statuses[answer[0]] += 1
        problem = http_fuzz.judge(request, *answer)
        if problem:
            problems.append(f"{problem}\n  request: {request.data[:3000]!r}\n  answer: {answer[2][:1000]!r}")
        if sent % 5000 == 0:
            print(f"  {sent} requests, {sent / (time.perf_counter() - started):.0f}/s, "
                  f"{len(problems)} problems", flush=True)
    return sent, statuses, problems, time.perf_counter() - started, timeline


def _report_http(seed, sent, statuses, problems, elapsed, probes, timeline, log_tail) -> int:
    count, slow, worst, failures = probes
    print(f"\nhttp: {sent} requests (seed {seed}) in {elapsed:.1f} s: {sent / elapsed:.0f} requests/s")
    print("answers by status:")
    for status, n in sorted(statuses.items(), key=lambda kv: str(kv[0])):
        print(f"  {n:>8}  {status}")
    print(f"/healthz probes: {count}, slowest {worst * 1000:.1f} ms, over {STALL * 1000:.0f} ms: {len(slow)}")
    for at, latency in slow[:10]:
        during = [line for sent_at, answered_at, line in timeline if sent_at <= at + latency and answered_at >= at]
        print(f"  {time.strftime('%H:%M:%S', time.localtime(at))} {latency * 1000:.1f} ms; requests in flight: {during}")
    for failure in failures[:10]:
        print(f"  probe failed: {failure}")
    for problem in problems[:MAX_CRASHES_SHOWN]:
        print(f"PROBLEM: {problem}")
    print(f"problems: {len(problems)}")
    bad = bool(problems or slow or failures)
    if bad:
        print(f"gateway log (tail):\n{log_tail}")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="target", required=True)
    smpp = sub.add_parser("smpp", help="mutated PDUs through both SMPP roles")
    smpp.add_argument("--inputs", type=int, default=100_000)
    smpp.add_argument("--seed", type=int, default=1)
    http = sub.add_parser("http", help="random requests to a live gateway's API")
    http.add_argument("--requests", type=int, default=20_000)
    http.add_argument("--seed", type=int, default=1)
    http.add_argument("--minutes", type=float, default=10.0, help="stop sending after this long")
    args = parser.parse_args()
    if args.target == "smpp":
        return fuzz_smpp(args.inputs, args.seed)
    return fuzz_http(args.requests, args.seed, args.minutes)


if __name__ == "__main__":
    sys.exit(main())
