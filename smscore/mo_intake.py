"""MO coming in from the operators' links: stored durably before the SMSC is answered, reassembled
when it came in parts, routed in the same transaction (``smscore.mo.MoRouter``), then counted and
handed on (SPEC §6, §10).

Kept apart from the pipeline, which moves MT out: the two share the store and the node's lease, and
nothing else. What routing queued with a stored MO goes back through the pipeline's hooks: its
reply SMS (``accepted_elsewhere``) and its push job to the keyword's backend (``on_push_queued``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from connectors.api import MoFacts
from policies.numbers import canonical_number
from smscore.model import MoMessage


class MoIntake:
    """Stores MO and their parts; sweeps parts whose other parts never came."""

    def __init__(self, *, store, clock, node: str, lease: float, route, reassembly_timeout: float, metrics,
                 on_replies: Callable[[list], object], on_push_queued: Callable[[], object],
                 on_mo: Callable[[MoMessage], object] | None, log) -> None:
        self.store = store
        self.clock = clock
        self.node = node
        self.lease = lease
        #: ``route(mo, spent) -> MoRouting``, run in the transaction that stores a whole MO
        self.route = route
        self.reassembly_timeout = reassembly_timeout
        self.metrics = metrics
        self.on_replies = on_replies
        self.on_push_queued = on_push_queued
        #: called with every MoMessage once it is stored whole (after routing, when there is one)
        self.on_mo: Callable[[MoMessage], object] = on_mo or self._log
        self.log = log
        self._sweep = LoopingCall(self.expire_parts)
        self._sweep.clock = clock

    def start(self) -> None:
        """Sweep every tenth of the reassembly timeout (0.5 to 10 s)."""
        self._sweep.start(min(10.0, max(0.5, self.reassembly_timeout / 10)), now=True)

    def stop(self) -> None:
        if self._sweep.running:
            self._sweep.stop()

    def received(self, mo: MoFacts) -> Deferred:
        """Store an MO (or a part of one) durably; the link answers the SMSC when this fires.
        A whole MO goes on to ``on_mo`` after it is stored."""
        now = self.clock.seconds()
        # "+46701234567" from one SMSC is the number "46701234567" everywhere else: its STOP must
        # stop the MT to it, its look-ups find it, its parts reassemble with the others'
        sender = canonical_number(mo.sender)
        if sender != mo.sender:
            mo = replace(mo, sender=sender)
        d = self.store.store_mo(mo, now, self.route, self.node, now + self.lease)
        d.addCallback(self._stored)
        return d

    def expire_parts(self) -> Deferred:
        """Store as they are the MO whose missing parts did not come within the timeout."""
        now = self.clock.seconds()
        d = self.store.expire_mo_parts(now - self.reassembly_timeout, now, self.route, self.node, now + self.lease)

        def done(mos):
            for mo in mos:
                self._stored(mo)

        d.addCallbacks(done, lambda f: self.log.error("MO reassembly sweep failed", error=f.getErrorMessage()))
        return d

    def _stored(self, mo: MoMessage | None) -> None:
        if mo is None:
            return  # a part of a concatenated MO; kept until its message is whole
        routing = mo.routing
        if routing is not None:
            shortcode = mo.to if routing.outcome != "no_shortcode" else ""  # configured numbers only: bounded
            self.metrics.child(self.metrics.mo, shortcode, mo.keyword, routing.outcome).inc()
            self.on_replies(routing.replies)
            if routing.push is not None:
                self.on_push_queued()
        try:
            self.on_mo(mo)
        except Exception as exc:  # noqa: BLE001 - the MO is stored; routing trouble must not refuse it
            self.log.error("MO handling failed", mo_id=mo.id, error=repr(exc))

    def _log(self, mo: MoMessage) -> None:
        self.log.info("mo received", mo_id=mo.id, operator=mo.operator, to=mo.to, parts=mo.parts,
                      keyword=mo.keyword or None, account=mo.account, outcome=mo.outcome, note=mo.note or None)
