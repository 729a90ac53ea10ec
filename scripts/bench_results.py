"""What one bench scenario measured (``Result``), as the peers' loadgen.py records it and as the
bench prints it: the per-scenario report and the summary table in summarize.py's columns.

Used by scripts/bench.py, scripts/bench_smpp.py and scripts/two_nodes.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from bench_load import Sent
from bench_plot import Series
from bench_receiver import CallbackReceiver


def pct(values, q) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


@dataclass
class Result:
    """What one scenario measured; times in Unix seconds."""

    scenario: object  # bench.Scenario
    messages: int
    store: str
    concurrency: int
    t0: float
    submit_end: float
    sent: Sent
    final_at: dict[str, float]  # accepted message id -> when its final status arrived
    statuses: Counter
    done: bool
    cpu: dict[str, float]  # "smsgw" (its process tree), "smsc_sim"
    threads: dict[str, float]
    processes: int
    bench_cpu: float
    peak_rss_mb: float
    store_final: int
    store_total: int
    receiver: CallbackReceiver | None = None

    @property
    def accepted(self) -> int:
        return sum(len(ids) for _, _, ids in self.sent.requests)

    @property
    def lost(self) -> int:
        return self.accepted - len(self.final_at)

    @property
    def latencies_ms(self) -> list[float]:
        return sorted((self.final_at[i] - start) * 1000 for start, _, ids in self.sent.requests
                      for i in ids if i in self.final_at)

    @property
    def last_final(self) -> float | None:
        return max(self.final_at.values()) - self.t0 if self.final_at else None

    def record(self, legacy: bool) -> dict:
        """The result line, in the fields of the peers' loadgen.py (summarize.py reads it)."""
        lat, accepted = self.latencies_ms, self.accepted
        request_ms = [(end - start) * 1000 for start, end, _ in self.sent.requests]
        submit = max(self.submit_end - self.t0, 1e-9)
        last = self.last_final
        out = {
            "gateway": f"smsgw {self.scenario.name}", "label": self.scenario.name, "store": self.store,
            "callbacks": self.scenario.callbacks_said(legacy),
            "n": self.messages, "concurrency": self.concurrency, "list_size": self.scenario.per_request,
            "accepted": accepted, "rejected_requests": self.sent.errors, "reject_samples": self.sent.samples,
            "submit_seconds": round(submit, 3), "accepted_per_s": round(accepted / submit, 1),
            "dlrs_final": len(self.final_at), "dlr_status": dict(self.statuses), "lost": self.lost,
            "all_dlrs_seconds": round(last, 3) if last is not None and self.lost == 0 else None,
            "last_dlr_seconds": round(last, 3) if last is not None else None,
            "end_to_end_per_s": round(len(self.final_at) / last, 1) if last else 0.0,
            "latency_ms": {str(p): round(pct(lat, p / 100), 1) if lat else None for p in (50, 90, 95, 99)},
            "latency_ms_max": round(lat[-1], 1) if lat else None,
            "http_accept_ms": {str(p): round(pct(request_ms, p / 100), 1) if request_ms else None for p in (50, 99)},
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu.items()},
            "cpu_ms_per_message": round(self.cpu["smsgw"] / max(1, accepted) * 1000, 3),
            "gateway_processes": self.processes, "peak_rss_mb": round(self.peak_rss_mb, 1),
            "loadgen_cpu_seconds": round(self.bench_cpu, 2),
            "store_final": self.store_final, "store_messages": self.store_total, "timed_out": not self.done,
        }
        if self.receiver is not None:
            counts = self.receiver.counts
            out.update(bad_signatures=counts["bad_signatures"], event_repeats=counts["repeats"],
                       no_event_id=counts["no_event_id"], bad_callback_bodies=counts["bad_bodies"],
                       other_callbacks=counts["other_callbacks"], receiver=dict(counts))
        return out

    def series(self) -> Series:
        return Series(self.scenario.name,
                      [end - self.t0 for _, end, ids in self.sent.requests for _ in ids],
                      sorted(t - self.t0 for t in self.final_at.values()), self.latencies_ms)


def report(result: Result, legacy: bool) -> None:
    """The per-scenario figures, as the bench printed them before the table existed."""
    r, s = result.record(legacy), result.scenario
    n, requests = result.accepted, len(result.sent.requests) + result.sent.errors
    where = "at the receiver" if s.callbacks else "in the store"
    lat = r["latency_ms"]
    print(f"  accepted             {r['accepted_per_s']:10.0f} msg/s   ({requests / r['submit_seconds']:.0f} requests/s, "
          f"{result.sent.errors} refused{': ' + result.sent.samples[0] if result.sent.samples else ''})")
    last = r["last_dlr_seconds"]
    print(f"  end-to-end           {r['end_to_end_per_s']:10.0f} msg/s   ({len(result.final_at)} final statuses {where}, "
          f"the last {last if last is not None else '-'} s after the first request"
          f"{'' if result.done else ', TIMED OUT'})")
    print(f"  accept latency       p50 {r['http_accept_ms']['50'] or 0:7.1f} ms   "
          f"p99 {r['http_accept_ms']['99'] or 0:7.1f} ms   (per request)")
    if lat["50"] is not None:
        print(f"  request->final       p50 {lat['50']:7.1f} ms   p95 {lat['95']:7.1f} ms   p99 {lat['99']:7.1f} ms   "
              f"max {r['latency_ms_max']:.1f} ms")
    print(f"  final statuses       {', '.join(f'{k} {v}' for k, v in sorted(result.statuses.items())) or '-'}")
    for k, used in result.cpu.items():
        extra = f", {result.processes} process(es), peak RSS {result.peak_rss_mb:.0f} MB" if k == "smsgw" else ""
        print(f"  CPU {k:<16} {used / max(1, n) * 1000:10.3f} ms per message  ({used:.2f} s{extra})")
    print(f"    of which: reactor thread {result.threads['main']:.2f} s, "
          f"store and other threads {result.threads['threads']:.2f} s")
    print(f"  CPU bench process    {result.bench_cpu:10.2f} s   (load generator{' and receiver' if s.callbacks else ''})")
    if result.receiver is not None:
        c = result.receiver.counts
        print(f"  callbacks            {c['posts']:10d} POSTs   ({c['batched_posts']} batched; {c['events']} events: "
              f"{c['final_events']} final, {c['nonfinal_events']} not; {c['repeats']} repeats dropped, "
              f"{c['final_again']} second finals, {c['other_callbacks']} other)")
        print(f"  bad signatures       {c['bad_signatures']:10d}   ({c['bad_bodies']} bad bodies, "
              f"{c['no_event_id']} events without event_id)")
    print(f"  lost messages        {result.lost:10d}   (store: {result.store_final} final of {n} accepted, "
          f"{n - result.store_final} not final or not in it)")


TABLE_HEAD = ("| result set | gateway | N | C | runs | accepted/s | all DLRs after s | end-to-end msg/s | lat p50 ms "
              "| p95 ms | p99 ms | max ms | lost | gateway CPU s (sum) | CPU s per process | CPU ms/msg | peak RSS MB |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def table_row(r: dict) -> str:
    """One row in the columns of /work/shared/peers/load/summarize.py, plus CPU ms/msg and peak RSS."""
    gateway = r["gateway"] + (f" list={r['list_size']}" if r.get("list_size", 1) > 1 else "")
    lat = r["latency_ms"]
    cpu = r["cpu_seconds"]
    gateway_cpu = sum(v for k, v in cpu.items() if k != "smsc_sim")
    last = r["last_dlr_seconds"]
    cells = [r["store"], gateway, r["n"], r["concurrency"], 1, r["accepted_per_s"], None if last is None else f"{last:.2f}",
             r["end_to_end_per_s"], lat["50"], lat["95"], lat["99"], r["latency_ms_max"], r["lost"],
             f"{gateway_cpu:.2f}", " ".join(f"{k}={v:.2f}" for k, v in cpu.items()), f"{r['cpu_ms_per_message']:.3f}",
             r["peak_rss_mb"]]
    return "| " + " | ".join("-" if c is None else str(c) for c in cells) + " |"
