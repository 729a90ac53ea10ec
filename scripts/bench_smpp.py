"""SMPP in → SMPP out (issue 11): a customer's ESME at window 100 submits N messages to the
gateway's SMPP server and waits for every receipt as deliver_sm.

The gateway (`smsgw run`, its default processes, SQLite) and a standalone simulated operator
(`smsgw smsc-sim`) are started as `scripts/bench.py` starts them (its ``Rig``), with the account
`bench` given ESME credentials and an `[smpp_server]` on a free loopback port. The ESME runs in
this process on Twisted with the project's SMPP session in the ESME role (a benchmark of the
server, not a second implementation to check it against: smpplib does that in the tests):
`--binds` transceivers, `--window` outstanding submit_sm each, registered_delivery 1, every
deliver_sm answered at once. A message's latency is from its submit_sm to its receipt; a receipt
may come before its submit_sm_resp is read, so both are matched by message id at the end.

Prints submitted/s, end-to-end msg/s (N / time to the last receipt), latency percentiles, lost and
repeated receipts, the CPU of the gateway's process tree and of the simulator, and one row in the
columns of bench.py's table; `--out FILE` appends the result as a JSON line. Exits 1 when a
receipt is missing. Bounded: `--timeout` seconds after the last submit.

    .venv/bin/python scripts/bench_smpp.py -n 10000
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import Rig, Scenario  # noqa: E402
from bench_results import pct, table_row  # noqa: E402
from tests.harness.net import free_port  # noqa: E402
from tests.harness.processes import cpu_seconds, peak_rss_mb  # noqa: E402
from twisted.internet import defer, task  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol  # noqa: E402

from connectors.smpp.protocol import SMPPProtocol  # noqa: E402
from connectors.smpp.session import ESME  # noqa: E402

SYSTEM_ID, PASSWORD = "esme", "esme"


@dataclass(frozen=True)
class SmppIn(Scenario):
    """The account `bench` with ESME credentials and the gateway's SMPP server on ``port``."""

    port: int = 0
    window: int = 100

    def account_lines(self, callback_port: int, legacy: bool) -> str:
        return (f'\n[accounts.bench.smpp]\nsystem_id = "{SYSTEM_ID}"\npassword = "{PASSWORD}"\nmax_binds = 16\n'
                f'\n[smpp_server]\nlisten = "127.0.0.1:{self.port}"\nwindow = {self.window}\n')


class Esme:
    """The handler of every ESME session: answers deliver_sm, notes when each receipt came."""

    def __init__(self, clock, expected: int) -> None:
        self.clock = clock
        self.expected = expected
        self.receipts: dict[str, float] = {}
        self.repeats = 0
        self.all_in: defer.Deferred = defer.Deferred()

    def request_received(self, proto, pdu) -> None:
        proto.respond(pdu)
        if pdu.command != "deliver_sm":
            return
        message_id = pdu.tlvs.get("receipted_message_id")
        if message_id in self.receipts:
            self.repeats += 1
            return
        self.receipts[message_id] = self.clock.seconds()
        if len(self.receipts) >= self.expected and not self.all_in.called:
            self.all_in.callback(None)

    def connection_closed(self, proto, reason) -> None:
        pass


async def submit_all(clock, port: int, esme: Esme, numbers: list[str], window: int) -> dict[str, float]:
    """One transceiver session submitting ``numbers`` at ``window``; {message id: submitted at}."""
    proto = SMPPProtocol(ESME, esme, clock, window=window, response_timeout=60.0)
    await connectProtocol(TCP4ClientEndpoint(clock, "127.0.0.1", port), proto)
    await proto.request("bind_transceiver", {"system_id": SYSTEM_ID, "password": PASSWORD})
    slots = defer.DeferredSemaphore(window)
    sent: dict[str, float] = {}
    waiting = []

    def answered(resp, started):
        sent[resp.params["message_id"]] = started
        slots.release()

    def refused(failure):
        slots.release()
        print(f"bench_smpp: a submit failed: {failure.getErrorMessage()}", file=sys.stderr)

    for number in numbers:
        await slots.acquire()
        started = clock.seconds()
        d = proto.request("submit_sm", {"source_addr": "BENCH", "source_addr_ton": 5, "destination_addr": number,
                                        "dest_addr_ton": 1, "dest_addr_npi": 1, "registered_delivery": 1,
                                        "short_message": b"bench message"})
        d.addCallbacks(answered, refused, callbackArgs=(started,))
        waiting.append(d)
    await defer.DeferredList(waiting)
    return sent


async def measure(clock, args, rig: Rig) -> dict:
    numbers = [f"4673{i:07d}" for i in range(args.messages)]
    esme = Esme(clock, args.messages)
    cpu0 = {k: cpu_seconds(p) for k, p in rig.pids.items()}
    t0 = clock.seconds()
    per = -(-len(numbers) // args.binds)
    results = await defer.gatherResults([defer.Deferred.fromCoroutine(
        submit_all(clock, args.smpp_port, esme, numbers[i * per:(i + 1) * per], args.window))
        for i in range(args.binds)])
    submit_end = clock.seconds()
    sent = {k: v for r in results for k, v in r.items()}
    esme.expected = len(sent)
    if len(esme.receipts) < len(sent):
        esme.all_in.addTimeout(args.timeout, clock)
        try:
            await esme.all_in
        except defer.TimeoutError:
            pass
    cpu1 = {k: cpu_seconds(p) for k, p in rig.pids.items()}
    got = {mid: at for mid, at in esme.receipts.items() if mid in sent}
    last = max(got.values(), default=t0)
    latency = sorted((got[mid] - at) * 1000 for mid, at in sent.items() if mid in got)
    cpu = {k: round(cpu1[k] - cpu0[k], 2) for k in cpu0}
    n = args.messages
    return {
        "gateway": "smsgw smpp-in", "store": "sqlite", "n": n, "concurrency": args.window * args.binds,
        "accepted": len(sent), "accepted_per_s": round(len(sent) / max(1e-9, submit_end - t0), 1),
        "last_dlr_seconds": round(last - t0, 3), "end_to_end_per_s": round(len(got) / max(1e-9, last - t0), 1),
        "latency_ms": {q: round(pct(latency, int(q) / 100), 1) for q in ("50", "95", "99")},
        "latency_ms_max": round(latency[-1], 1) if latency else None,
        "lost": n - len(got), "repeated_receipts": esme.repeats, "cpu_seconds": cpu,
        "cpu_ms_per_message": round(1000 * cpu["smsgw"] / max(1, len(got)), 3),
        "peak_rss_mb": peak_rss_mb(rig.pids["smsgw"]),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--messages", type=int, default=10000, help="messages (default 10000, at most 1,000,000)")
    p.add_argument("--window", type=int, default=100, help="outstanding submit_sm per ESME session (default 100)")
    p.add_argument("--binds", type=int, default=1, help="ESME transceiver sessions (default 1)")
    p.add_argument("--receipt-delay", default="0ms", help="simulated operator's receipt delay (default 0ms)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for receipts after the last submit")
    p.add_argument("--out", help="append the result as a JSON line to this file")
    args = p.parse_args()
    if not 1 <= args.messages <= 1_000_000 or not 1 <= args.binds <= 16:
        p.error("-n must be 1..1,000,000 and --binds 1..16")
    args.smpp_port = free_port()
    # what Rig reads from bench.py's arguments
    args.store, args.pg_url, args.legacy_callbacks = "sqlite", None, False
    scenario = SmppIn("smpp-in", "SMPP in, receipts as deliver_sm", port=args.smpp_port, window=args.window)
    with Rig(args, scenario) as rig:  # react exits: 0, or 1 when _run failed (a receipt lost)
        task.react(lambda clock: defer.Deferred.fromCoroutine(_run(clock, args, rig)))
    return 0


async def _run(clock, args, rig) -> None:
    r = await measure(clock, args, rig)
    print(f"smsgw SMPP in: {r['accepted']} submitted at {r['accepted_per_s']}/s, {r['n'] - r['lost']} receipts, "
          f"end to end {r['end_to_end_per_s']} msg/s, latency p50 {r['latency_ms']['50']} ms p99 "
          f"{r['latency_ms']['99']} ms, lost {r['lost']}, repeated {r['repeated_receipts']}, gateway CPU "
          f"{r['cpu_seconds']['smsgw']} s ({r['cpu_ms_per_message']} ms a message), simulator "
          f"{r['cpu_seconds']['smsc_sim']} s")
    r["list_size"] = 1
    print(table_row(r))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(r) + "\n")
    if r["lost"]:
        raise RuntimeError(f"{r['lost']} receipts never came")


if __name__ == "__main__":
    sys.exit(main())
