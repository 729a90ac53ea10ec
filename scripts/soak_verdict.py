"""What the soak (scripts/soak.py) samples while it runs (``Sample``: memory, descriptors, backlogs,
statuses) and what it concludes at the end: the verdict record (``soak.json``), its problems, the
table printed and the plot (``soak.png``, with matplotlib, the optional extra `bench`).
"""

from __future__ import annotations

import math
import os
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_receiver import FINAL_STATUSES
from restart_scale import submits

UNREACHABLE = "4670999"  # sim_a accepts these and answers UNDELIV: the message fails over to sim_b
RUN_SETTLE = 15.0  # seconds of each run (after a start) left out of its own RSS slope


# -- what is sampled ----------------------------------------------------------------------------------
@dataclass
class Sample:
    t: float  # seconds since the load started
    run: int  # 0 before the first kill, then one more per kill
    rss_mb: float
    fds: int
    processes: int
    queue_depth: float | None  # smsgw_queue_depth summed over operators (None: /metrics did not answer)
    inflight: float | None
    not_final: int  # messages in the store not final yet
    push_backlog: int  # push jobs waiting (status callbacks, MO pushes)
    statuses: dict[str, int]
    accepted: int  # 202 answers so far
    loading: bool
    took_s: float  # how long the sample took (a slow store or /metrics shows here)


def proc_figures(pids: list[int]) -> tuple[float, int]:
    """(RSS in MB, open file descriptors) summed over ``pids``; a process gone meanwhile counts 0."""
    kb, fds = 0, 0
    for pid in pids:
        try:
            kb += next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, StopIteration):
            pass
    return kb / 1024, fds


def scrape(port: int) -> dict[str, float] | None:
    """Every sample of GET /metrics, summed per metric name (labels dropped); None without an answer."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3).read().decode()
    except OSError:
        return None
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("{", 1)[0].split(" ", 1)[0], line.rsplit(" ", 1)[1]
            sums[name] = sums.get(name, 0.0) + float(value)
    return sums


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) in MB/hour; None for fewer than 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / var * 3600


# -- the verdict ----------------------------------------------------------------------------------
def duplicate_submits(sims: dict) -> tuple[int, int]:
    """(duplicates, failovers): extra submits of one MT destination to one SMSC, and unreachable
    destinations that sim_a and then sim_b accepted. MO replies (4673…) go to a phone twice when
    the first push failed (the unavailable reply), so they are left out."""
    seen = {name: Counter(to for _, to in submits(sim.log) if not to.startswith("4673")) for name, sim in sims.items()}
    dups = sum(n - 1 for counts in seen.values() for n in counts.values() if n > 1)
    failovers = sum(1 for to in seen["sim_a"] if to.startswith(UNREACHABLE) and to in seen["sim_b"])
    return dups, failovers


def rss_slopes(samples: list[Sample], warmup: float, kills: list[dict]) -> tuple[float | None, list[float | None]]:
    """(slope over the load's samples after the warm-up, the slope of each run after RUN_SETTLE)."""
    load = [s for s in samples if s.loading]
    overall = slope_mb_per_hour([(s.t, s.rss_mb) for s in load if s.t >= warmup])
    starts = [0.0] + [k["t"] + k["restart_s"] for k in kills]
    per_run = [slope_mb_per_hour([(s.t, s.rss_mb) for s in load if s.run == i and s.t >= start + RUN_SETTLE])
               for i, start in enumerate(starts)]
    return overall, per_run


def verdict(soak, sims: dict, stopped_cleanly: bool, window: int) -> dict:
    """The record of a finished soak (``soak``: scripts/soak.py's ``Soak``; ``sims``: name -> its
    ``crash_rig.Sim``)."""
    stored = soak.store.messages()
    accepted = soak.accepted
    statuses = Counter(stored.get(mid, ("", "missing"))[1] for mid in accepted)
    lost_store = sum(1 for mid in accepted if stored.get(mid, ("", ""))[1] not in FINAL_STATUSES)
    lost_callbacks = len(accepted.keys() - soak.receiver.final_at.keys())
    mo_stored = soak.store.mo_bodies()
    replies = Counter(body for body, status in soak.store.replies() if status in FINAL_STATUSES)
    mo_replied = sum(1 for t in soak.mo_acked if replies[f"re {t.split()[1]}"])
    mo_lost = sum(1 for t in soak.mo_acked if t not in mo_stored or not soak.mo_receiver.pushes[t])
    dups, failovers = duplicate_submits(sims)
    kills = soak.events.kills
    bound = len(kills) * window * len(sims)  # one bind per operator (SPEC §11)
    warmup = soak.args.warmup
    overall, per_run = rss_slopes(soak.samples, warmup, kills)
    runs = [s for s in per_run if s is not None]
    samples = soak.samples
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(soak.args).items() if k != "pg_url"},
        "store": "postgresql" if soak.args.pg_url else "sqlite",
        "accepted": len(accepted), "unanswered": soak.unanswered, "refused": dict(soak.refused),
        "skipped_ticks": soak.skipped, "statuses": dict(statuses), "drained": soak.drained,
        "lost_store": lost_store, "lost_callbacks": lost_callbacks,
        "duplicate_submits": dups, "duplicate_bound": bound, "failovers": failovers,
        "callbacks": dict(soak.receiver.counts), "duplicate_callbacks": soak.receiver.counts["repeats"],
        "mo": {"outcomes": dict(soak.mo_outcomes), "acked": len(soak.mo_acked),
               "stored": sum(1 for t in soak.mo_acked if t in mo_stored),
               "pushed": sum(1 for t in soak.mo_acked if soak.mo_receiver.pushes[t]),
               "push_repeats": sum(n - 1 for n in soak.mo_receiver.pushes.values() if n > 1),
               "replied": mo_replied, "replies_repeated": sum(n - 1 for n in replies.values() if n > 1),
               "lost": mo_lost, "bad_signatures": soak.mo_receiver.bad_signatures},
        "kills": kills, "receiver_outages": soak.events.outages, "stopped_cleanly": stopped_cleanly,
        "rss_mb": {"min": min((s.rss_mb for s in samples), default=None),
                   "max": max((s.rss_mb for s in samples), default=None),
                   "slope_mb_per_hour": overall, "slope_per_run_mb_per_hour": per_run,
                   "slope_per_run_median": sorted(runs)[len(runs) // 2] if runs else None},
        "fds": {"min": min((s.fds for s in samples), default=None), "max": max((s.fds for s in samples), default=None)},
        "backlog_max": {"queue_depth": max((s.queue_depth or 0 for s in samples), default=0),
                        "not_final": max((s.not_final for s in samples), default=0),
                        "push_backlog": max((s.push_backlog for s in samples), default=0)},
        "samples": [asdict(s) for s in samples],
    }
    record["problems"] = problems(record)
    return record


def problems(r: dict) -> list[str]:
    found = []
    if r["lost_store"] or r["lost_callbacks"]:
        found.append(f"lost: {r['lost_store']} without a final status in the store, "
                     f"{r['lost_callbacks']} without a final callback")
    if r["mo"]["lost"] or r["mo"]["replied"] < r["mo"]["acked"]:
        found.append(f"MO: {r['mo']['lost']} acknowledged but not stored or pushed, "
                     f"{r['mo']['acked'] - r['mo']['replied']} without a final reply")
    if r["duplicate_submits"] > r["duplicate_bound"]:
        found.append(f"{r['duplicate_submits']} duplicate submits, over window x binds x operators x kills "
                     f"= {r['duplicate_bound']} (SPEC §11)")
    if r["callbacks"].get("bad_signatures") or r["mo"]["bad_signatures"]:
        found.append("bad signatures on pushes")
    if not r["stopped_cleanly"]:
        found.append("the gateway did not stop cleanly on SIGTERM")
    return found


def fmt(value, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def table(r: dict) -> str:
    mo, rss = r["mo"], r["rss_mb"]
    runs = ", ".join(fmt(s) for s in rss["slope_per_run_mb_per_hour"])
    rows = [
        ("MT accepted", f"{r['accepted']} (+{r['unanswered']} unanswered, refused {r['refused'] or 0}, "
                        f"{r['skipped_ticks']} ticks skipped)"),
        ("final statuses", ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items()))),
        ("lost", f"{r['lost_store']} in the store, {r['lost_callbacks']} callbacks"),
        ("failovers sim_a -> sim_b", r["failovers"]),
        ("duplicate submits", f"{r['duplicate_submits']} (bound {r['duplicate_bound']})"),
        ("duplicate callbacks", f"{r['duplicate_callbacks']} of {r['callbacks'].get('posts', 0)} posts (allowed)"),
        ("MO acked / pushed / replied", f"{mo['acked']} / {mo['pushed']} / {mo['replied']} (lost {mo['lost']}, "
                                        f"outcomes {mo['outcomes']})"),
        ("kills / receiver outages", f"{len(r['kills'])} / {len(r['receiver_outages'])}"),
        ("RSS MB min / max", f"{fmt(rss['min'])} / {fmt(rss['max'])}"),
        ("RSS slope MB/h (after warm-up)", fmt(rss["slope_mb_per_hour"])),
        ("RSS slope MB/h per run", f"median {fmt(rss['slope_per_run_median'])}; {runs}"),
        ("fds min / max", f"{r['fds']['min']} / {r['fds']['max']}"),
        ("max backlog", f"queue_depth {fmt(r['backlog_max']['queue_depth'])}, not final "
                        f"{r['backlog_max']['not_final']}, push jobs {r['backlog_max']['push_backlog']}"),
        ("drained / stopped cleanly", f"{r['drained']} / {r['stopped_cleanly']}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def write_plot(r: dict, path: Path) -> str | None:
    """soak.png: RSS (top) and backlogs (bottom) over time, kills as red lines, outages shaded.
    Returns why nothing was drawn, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib cannot be imported ({exc}); install the extra: pip install -e '.[bench]'"
    samples = r["samples"]
    t = [s["t"] / 60 for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 5.5))
    top.plot(t, [s["rss_mb"] for s in samples], ".-", ms=3, label="RSS of the smsgw run tree (MB)")
    bottom.plot(t, [s["queue_depth"] or 0 for s in samples], label="smsgw_queue_depth")
    bottom.plot(t, [s["not_final"] for s in samples], label="messages not final (store)")
    bottom.plot(t, [s["push_backlog"] for s in samples], label="push jobs waiting (store)")
    for ax in (top, bottom):
        for k in r["kills"]:
            ax.axvline(k["t"] / 60, color="red", lw=0.8, alpha=0.7)
        for o in r["receiver_outages"]:
            ax.axvspan(o["t"] / 60, (o["t"] + o["seconds"]) / 60, color="grey", alpha=0.2)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    top.set_title(f"soak: {r['accepted']} MT at {r['settings']['rate']:g}/s, {len(r['kills'])} SIGKILLs (red), "
                  f"receiver outages (grey); lost {r['lost_store']}", fontsize=10)
    top.set_ylabel("MB")
    bottom.set_ylabel("messages / jobs")
    bottom.set_xlabel("minutes since the load started")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return None


# -- CLI ----------------------------------------------------------------------------------------------
