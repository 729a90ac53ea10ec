"""PNG plots of a `scripts/bench.py` run: throughput over time and the latency CDF, per scenario.

matplotlib (the optional extra ``bench`` of pyproject.toml; `scripts/bench` installs it) draws
with the Agg backend, so no display is needed. Without matplotlib `write_plots` draws nothing
and says why; the bench prints its table all the same.

Input, per scenario: a name, the times (seconds after the scenario's first request) at which
messages were accepted and at which their final statuses arrived, and the accept→final latencies
in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Series:
    """What one scenario contributes to the plots."""

    name: str
    accepted_at: list[float]  # seconds after the first request, one per accepted message
    final_at: list[float]  # seconds after the first request, one per final status received
    latencies_ms: list[float]


def _bins(span: float) -> float:
    """A bin width (seconds) that gives about 50 points over the longest scenario."""
    return min(1.0, max(0.1, span / 50))


def _rate(times: list[float], width: float, end: float) -> tuple[list[float], list[float]]:
    count = int(end / width) + 1
    hist = [0] * count
    for t in times:
        if t >= 0:
            hist[min(count - 1, int(t / width))] += 1
    return [i * width for i in range(count)], [h / width for h in hist]


def write_plots(series: list[Series], folder: Path, suffix: str = "") -> tuple[list[Path], str | None]:
    """Writes throughput<suffix>.png and latency-cdf<suffix>.png into ``folder``: (files written, why none)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return [], f"matplotlib cannot be imported ({exc}); install the extra: pip install -e '.[bench]'"
    series = [s for s in series if s.accepted_at]
    if not series:
        return [], "no scenario accepted a message"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    span = max(max(s.accepted_at + s.final_at) for s in series)
    width = _bins(span)

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 7))
    for index, s in enumerate(series):
        colour = f"C{index}"
        x, y = _rate(s.accepted_at, width, span)
        top.step(x, y, where="post", color=colour, label=s.name)
        x, y = _rate(s.final_at, width, span)
        bottom.step(x, y, where="post", color=colour, label=s.name)
    top.set_title(f"accepted per second (bins of {width:.2f} s)")
    bottom.set_title("final statuses received per second (callbacks at the receiver, else the store)")
    bottom.set_xlabel("seconds after the scenario's first request")
    for ax in (top, bottom):
        ax.set_ylabel("messages/s")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    fig.tight_layout()
    path = folder / f"throughput{suffix}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(10, 5))
    for index, s in enumerate(series):
        values = sorted(v for v in s.latencies_ms if v > 0)
        if values:
            n = len(values)
            ax.step(values, [(i + 1) / n for i in range(n)], where="post", color=f"C{index}", label=s.name)
    ax.set_xscale("log")
    ax.set_xlabel("request start → final status, ms (log scale)")
    ax.set_ylabel("fraction of messages")
    ax.set_title("latency CDF")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = folder / f"latency-cdf{suffix}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written, None
