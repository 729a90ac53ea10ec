"""An account's request rate (SPEC §5 ``tps``): the token bucket rule, a pure decision.

The bucket holds one second's worth of requests (at least one, so that a share of a small limit,
such as 1 tps over two nodes, still lets a request through now and then), fills at ``rate`` a
second, and each request takes one token. The caller keeps the bucket's state where its processes
can all see it and hands it in; this module only says whether the request goes and what is left.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Spent(NamedTuple):
    """The decision for one request: whether it goes, the tokens left, and when to try again."""

    allowed: bool
    tokens: float
    retry_after: int  # whole seconds, for the Retry-After header; 0 when allowed


def size(rate: float) -> float:
    return max(1.0, rate)


def spend(tokens: float | None, last: float, now: float, rate: float) -> Spent:
    """Take a token from a bucket that had ``tokens`` at ``last`` (None: a new, full bucket). A
    ``rate`` of 0 (a node joining the cluster holds no share of the limit yet) lets nothing through."""
    if rate <= 0:
        return Spent(False, 0.0, 1)
    full = size(rate)
    if tokens is None:
        tokens = full
    else:
        tokens = min(full, tokens + max(0.0, now - last) * rate)
    if tokens < 1.0:
        return Spent(False, tokens, max(1, math.ceil((1.0 - tokens) / rate)))
    return Spent(True, tokens - 1.0, 0)
