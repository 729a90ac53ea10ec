"""The MT pipeline: from a stored message to a delivery receipt, through the operator links.

accept → store (``queued``, claimed by this node) → in-memory queue of the chosen operator →
``link.submit_to`` → ``store.record_submit`` (``submitted``) → receipt → ``store.apply_receipt``
(``delivered`` / ``failed`` / failover back to ``queued``) → the receipt is acknowledged.

The pipeline decides nothing itself: operator choice comes from ``policies.routing``, status rules
from ``smscore.transitions`` (applied inside the store). It keeps only what is being sent now in
memory: at most ``max_in_memory`` messages; beyond that, accepted messages are stored unclaimed and
claimed in batches when the queues drain (``smscore.claiming``: leases, restarts, expired leases of
dead nodes), so a backlog of millions does not fill memory.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from connectors.api import MoFacts, ReceiptFacts, SubmitRequest
from policies.claims import announced
from smscore.backlog import Backlog, Backlogged
from smscore.cancelling import Cancelling
from smscore.claiming import Claims
from smscore.logs import enabled, get_logger
from smscore.metrics import Metrics
from smscore.model import Message, MoMessage, Status
from smscore.operator_room import OperatorRoom
from smscore.mo_intake import MoIntake
from smscore.parking import Parking
from smscore.queues import OperatorQueues
from smscore.receipt_timeouts import ReceiptTimeouts
from smscore.routing import Routing
from smscore.store.base import Store
from smscore.submit_outcomes import SubmitOutcomes
from smscore.transitions import Transition

#: seconds between two looks for queued messages whose validity ended (``_validity_ended``)
VALIDITY_SWEEP = 1.0
VALIDITY_ENDED = "validity period ended before submission"


class Pipeline(Cancelling, SubmitOutcomes, OperatorRoom):
    """Moves accepted messages to the operators and receipts back into the store (customers'
    cancels: ``Cancelling``; what a submit's answer changes: ``SubmitOutcomes``)."""

    def __init__(self, *, store: Store, clock, node: str, lease: float, routing: Routing,
                 metrics: Metrics | None = None, max_in_memory: int = 20000, claim_batch: int = 1000,
                 claim_interval: float = 2.0, receipt_timeout: float = 72 * 3600.0,
                 mo_reassembly_timeout: float = 300.0, delivers: bool = True,
                 on_unclaimed: Callable[[str], object] = lambda first_id: None, mo_route=None,
                 on_push_queued: Callable[[], object] | None = None,
                 on_mo: Callable[[MoMessage], object] | None = None,
                 held_elsewhere: Callable[[], frozenset[str]] = frozenset, backlog: Backlog | None = None,
                 number_lookup=None, others_alive: Callable[[], bool] = lambda: False,
                 hold_limit: Callable[[], int | None] = lambda: None) -> None:
        """``store`` must have been built with this ``routing``'s ``untried`` (StoreRules).
        ``held_elsewhere()``: the operators whose binds only other nodes hold now (``smscore.cluster``).
        ``backlog``: refuses new messages past ``max_backlog`` (``smscore.backlog``); None: never.
        ``number_lookup``: HLR/MNP look-ups before choosing (``smscore.number_lookup``); None: never.
        ``others_alive()``: whether other live nodes share the store (``_no_operator``).
        ``hold_limit()``: how many messages this node holds in memory now, None: ``max_in_memory``
        (a node of a cluster holds a few seconds of its share: ``policies.cluster.hold_limit``)."""
        self.backlog = backlog
        self.number_lookup = number_lookup
        self.store = store
        self.clock = clock
        self.node = node
        self.lease = lease
        self.routing = routing
        self.metrics = metrics or Metrics()
        self.max_in_memory = max_in_memory
        self.hold_limit = hold_limit
        #: False in an API worker (smscore.supervisor): messages are stored unclaimed for the main
        #: worker, which ``on_unclaimed(first_id)`` nudges (the lowest id stored, "" if unknown:
        #: its claim starts there, ``policies.claims``); nothing is claimed or sent from here
        self.delivers = delivers
        self.on_unclaimed = on_unclaimed
        #: called when a stored change queued a push job (the push worker claims it at once)
        self.on_push_queued: Callable[[], object] = on_push_queued or (lambda: None)
        self.held_elsewhere = held_elsewhere
        #: operators that hold all the room in memory but what is kept for the others
        #: (policies.claims.queue_full): claims pass by what is parked for them and the profiles
        #: that have no other operator with room
        self.full: set[str] = set()
        self.others_alive = others_alive
        self.parking = Parking(store, clock, node, self._log_failure)  # for operators other nodes hold
        self._looking: dict[str, Message] = {}  # waiting for a number look-up's answer
        self.links: dict = {}
        self._limits: dict = {}  # each link's max_in_flight() (None: none), fixed for its life (pump)
        self.queues = OperatorQueues()  # by operator, and the ids they hold
        self.inflight: dict[str, int] = {}
        self.held = 0  # messages of this node in memory: queued here or being submitted
        #: messages submitted to an operator whose outcome is not stored yet (too late to cancel)
        self._sending: dict[str, Message] = {}
        #: message id -> the call that tries again to store its submit's outcome (the store failed)
        self._outcome_retries: dict[str, object] = {}
        #: message id -> [its cancels being stored, the message set aside meanwhile, any stored]
        self._cancelling: dict[str, list] = {}
        self.log = get_logger(component="pipeline", node=node)
        #: MO in from the links: stored, routed, counted, handed to ``on_mo`` (after routing)
        self.mo_intake = MoIntake(store=store, clock=clock, node=node, lease=lease, route=mo_route,
                                  reassembly_timeout=mo_reassembly_timeout, metrics=self.metrics,
                                  on_replies=self.accepted_elsewhere, on_push_queued=self.on_push_queued,
                                  on_mo=on_mo, log=self.log)
        #: stored work into memory: claims while there is room, and this node's lease
        self.claims = Claims(store=store, clock=clock, node=node, lease=lease, batch=claim_batch,
                             interval=claim_interval, room=lambda: self.most() - self.held,
                             take=self._claimed, holding=self._waiting, lost=self._lost, others_alive=others_alive,
                             skip=self._skipped, skip_profiles=self._blocked_profiles, before=self.parking.retry,
                             released=lambda n: self.metrics.status_changed("queued", n=n),
                             log_failure=self._log_failure, back=self.retry_outcomes_now)
        #: no final receipt within receipt_timeout: unknown (a reload sets its timeout)
        self.receipt_timeouts = ReceiptTimeouts(store=store, clock=clock, timeout=receipt_timeout,
                                                after=self._after, log_failure=self._log_failure)
        self.metrics.watch_queues(self._queue_figures)
        self._validity_sweep = LoopingCall(self._validity_ended)
        self._validity_sweep.clock = clock

    def _queue_figures(self) -> list[tuple[str, int, int]]:
        """(operator, queued, in flight) for ``smsgw_queue_depth`` and ``smsgw_inflight``: the
        operators of the config, and one a reload removed only while messages still wait for it."""
        return [(name, len(self.queues[name]), self.inflight[name]) for name in self.links
                if name in self.routing.costs or self.queues[name] or self.inflight[name]]

    # -- wiring ------------------------------------------------------------------------------
    def add_link(self, link) -> None:
        """Add (or replace, after a reload) an operator's link."""
        self.links[link.name] = link
        self._limits[link.name] = link.max_in_flight() if hasattr(link, "max_in_flight") else None
        self.queues.setdefault(link.name, deque())
        self.inflight.setdefault(link.name, 0)

    @property
    def owner(self) -> str | None:
        """Who holds the messages this pipeline stores: this node, or nobody (an API worker stores
        them for the main worker to claim)."""
        return self.node if self.delivers else None

    def lease_until(self) -> float:
        return self.clock.seconds() + self.lease

    def most(self) -> int:
        """How many messages this node may hold in memory now (claimed at acceptance or from the
        store): ``max_in_memory``, or less in a cluster, where the rest is for every node."""
        limit = self.hold_limit()
        return self.max_in_memory if limit is None else min(self.max_in_memory, limit)

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> Deferred:
        """Keep the sweeps going, and the claims and lease (``Claims``, a restart included)."""
        self.mo_intake.start()
        self.receipt_timeouts.start()
        self._validity_sweep.start(VALIDITY_SWEEP, now=False)
        return self.claims.start()

    def _validity_ended(self) -> None:
        """Messages whose validity ended while they waited here (their operator unbound, or
        backing off) expire now, not when they would have been sent (SPEC §13, ``validity_period``:
        ``expired`` if not delivered by then); the submit checks it once more."""
        for m in self.queues.take_expired(self.clock.seconds()):
            self._end_unsent(m, "expire", Status.EXPIRED, VALIDITY_ENDED)

    def stop(self) -> Deferred:
        """Stop claiming; give back what is queued in memory so another node need not wait."""
        self.claims.stop()
        self.receipt_timeouts.stop()
        self.mo_intake.stop()
        if self._validity_sweep.running:
            self._validity_sweep.stop()
        self.stop_outcome_retries()
        ids = self._waiting() + self.parking.drop()
        self._looking.clear()
        self._cancelling.clear()
        self.queues.clear_all()
        if not ids:
            return succeed(None)
        return self.store.release(self.node, ids)

    def _claimed(self, messages: list[Message]) -> None:
        """Messages claimed from the store: this node's now, to send. One it holds already (its
        copy given back to the store meanwhile: paused and resumed through another node before
        this node's renewal said so) is not taken twice: it would go out twice."""
        for m in messages:
            if not self._holds(m.id):
                self.held += 1
                self.enqueue(m)

    def _holds(self, message_id: str) -> bool:
        """Whether this node holds ``message_id`` in memory: queued, being looked up, set aside
        while a cancel is stored, or being submitted."""
        if message_id in self.queues.ids or message_id in self._looking or message_id in self._sending:
            return True
        entry = self._cancelling.get(message_id)
        return entry is not None and entry[1] is not None

    def _waiting(self) -> list[str]:
        """The ids of the messages this node holds and has not handed to a link yet."""
        ids = list(self.queues.ids)
        ids += self._looking
        ids += [entry[1].id for entry in self._cancelling.values() if entry[1] is not None]
        return ids

    def _lost(self, message_ids: list[str]) -> None:
        """The store says these messages are no longer this node's to send (a lease renewal):
        ops or a customer changed them through another node or process (paused, cancelled), or
        another node claimed them. Those still waiting here are dropped, never submitted, and
        their leases given back (one this node claimed again meanwhile is claimed afresh)."""
        gone = set(message_ids)
        dropped = self.forget(gone)
        for entry in self._cancelling.values():
            if entry[1] is not None and entry[1].id in gone:
                dropped.append(entry[1].id)
                entry[1] = None
                self.held -= 1
        if dropped:
            self.log.info("messages changed through another node: not sent here", messages=len(dropped))
            d = self.store.release(self.node, dropped)
            d.addErrback(self._log_failure, "giving back messages changed elsewhere failed")

    # -- accepting ---------------------------------------------------------------------------
    _nudging = False  # an API worker: the main worker is nudged (``on_unclaimed``) at this turn's end
    _nudge_from: str | None = None  # the lowest id stored for that nudge (policies.claims.announced)

    def _announce(self, first_id: str) -> None:
        """Messages from ``first_id`` up were stored for the main worker: it is nudged at this
        turn's end, once for all the requests stored in the turn (the store's commits fire
        together), not once a request, and not later than the turn."""
        self._nudge_from = announced(self._nudge_from, first_id)
        if not self._nudging:
            self._nudging = True
            self.clock.callLater(0, self._nudge)

    def _nudge(self) -> None:
        first_id, self._nudging, self._nudge_from = self._nudge_from or "", False, None
        self.on_unclaimed(first_id)

    def accept(self, messages: Sequence[Message], once: dict | None = None) -> Deferred:
        """Store messages durably; fires (with the messages) once they are. Queued ones are sent.

        With ``once`` (account, key, body_hash, render: an idempotency key), fires with the first
        answer (a dict) instead when the key was used before, and nothing is stored.
        """
        if self.backlog is not None:
            try:
                self.backlog.check(messages)
            except Backlogged:
                if once is None:
                    return fail()
                # a repeat of a request stored before gets its first answer (SPEC §4), not 503
                refused = Failure()
                d = self.store.answered_before(once["account"], once["key"], once["body_hash"], self.clock.seconds())
                return d.addCallback(lambda first: refused if first is None else first)
        claim_now = self.delivers and self.held + len(messages) <= self.most() and not self._blocked(messages)
        owner, lease_until = (self.node, self.lease_until()) if claim_now else (None, 0.0)  # a lease needs an owner
        if claim_now:
            self.held += len(messages)  # reserved; what is not sendable after the store's rules is given back
        if once is None:
            d = self.store.accept(messages, owner, lease_until)
        else:
            d = self.store.accept_once(messages, owner, lease_until, at=self.clock.seconds(), **once)

        def stored(replayed):
            if once is not None and replayed is not None:
                if claim_now:
                    self.held -= len(messages)
                return replayed
            if self.backlog is not None:
                self.backlog.accepted(messages)
            self.metrics.accepted.inc((), len(messages))
            for m in messages:
                self.metrics.status_changed(m.status._value_)
            if not claim_now and self.delivers:
                if messages:  # memory was full: the claims find them as it empties
                    self.claims.nudged(min(m.id for m in messages))
                return messages
            sendable = [m for m in messages if m.status is Status.QUEUED
                        and (m.send_at is None or m.send_at <= self.clock.seconds())]
            if claim_now:
                self.held -= len(messages) - len(sendable)
                for m in sendable:
                    self.enqueue(m)
            elif sendable:
                self._announce(min(m.id for m in sendable))
            return messages

        def not_stored(failure):
            if claim_now:
                self.held -= len(messages)
            return failure

        d.addCallbacks(stored, not_stored)
        return d

    def forget(self, message_ids) -> list[str]:
        """Drop messages from the in-memory queues and number look-ups (cancelled, paused): they
        are not sent. Returns the ids dropped."""
        gone = set(message_ids)
        dropped = self.queues.drop(gone)
        dropped += [mid for mid in gone if self._looking.pop(mid, None) is not None]
        self.held -= len(dropped)
        return dropped

    def accepted_elsewhere(self, messages) -> None:
        """Messages another path stored claimed by this node (shortcode replies): count, send them."""
        if messages:
            self.metrics.accepted.inc((), len(messages))
        for m in messages:
            self.metrics.status_changed(m.status.value)
            if m.status is Status.QUEUED and self.delivers:
                self.held += 1
                self.enqueue(m)
        queued = [m.id for m in messages if m.status is Status.QUEUED]
        if not self.delivers and queued:
            self._announce(min(queued))

    # -- sending -----------------------------------------------------------------------------
    def enqueue(self, message: Message, front: bool = False) -> None:
        if message.id in self._cancelling:  # a customer's cancel is being stored: set aside until it is
            self._cancelling[message.id][1] = message
            return
        elsewhere = self.held_elsewhere()
        if self.number_lookup is not None and (message.reach is None or message.reach.intersection(message.tried)):
            # an HLR/MNP look-up first, when it is worth its price (smscore.number_lookup)
            reach = self.number_lookup.reach(message, self.routing.options(message, self.links, elsewhere))
            if isinstance(reach, Deferred):
                self._looking[message.id] = message
                reach.addCallback(self._looked_up, message, front)
                reach.addErrback(self._log_failure, "routing after a number look-up failed", message_id=message.id)
                return
            message.reach = reach
        # Routing.route: an operator another node holds (elsewhere) counts as up, and is parked for it
        operator = self.routing.route(message, self.links, elsewhere, self.clock.seconds())
        if operator is None:
            return self._no_operator(message)
        if operator in elsewhere or self._waits_in_store(operator):
            self._park(message, operator)  # for the nodes that hold it, or until it has room here
            return
        self.queues.add(operator, message, front)
        self._queue_changed(operator)
        self.pump(operator)

    def _no_operator(self, m: Message) -> None:
        """Every operator was tried (the store made it final), or none can take it here (a reload
        removed its profile: docs/configuration.md, "What reload changes")."""
        why = None if m.status.final else self.routing.unroutable(m)
        if why is not None and not self.others_alive():
            self.log.warning("message cannot be routed", message_id=m.id, detail=why)
            return self._end_unsent(m, "unroutable", Status.FAILED, why)
        self.held -= 1
        if why is None:
            return self.log.warning("no operator left", message_id=m.id, profile=m.profile)
        self.log.warning("message cannot be routed here: given back", message_id=m.id, detail=why)
        self.clock.callLater(self.lease, lambda: self.store.release(self.node, [m.id]).addErrback(
            self._log_failure, "giving back a message failed", message_id=m.id))

    def _looked_up(self, reach: frozenset[str], message: Message, front: bool) -> None:
        if self._looking.pop(message.id, None) is None:
            return  # stopped meanwhile: given back to the store with the rest
        message.reach = reach
        self.enqueue(message, front)

    def pump(self, operator: str) -> None:
        if operator not in self.links:
            return  # removed by a reload: its queue moved on (see _reroute)
        if operator in self.full:  # pumped after an outcome was stored: it may have room again
            self._queue_changed(operator)
        queue = self.queues[operator]
        if not queue:
            return
        link, limit = self.links[operator], self._limits[operator]
        if limit is None:
            room = link.capacity()
        else:
            # A submit counts until its outcome is stored (after a crash only what is in flight can
            # go out twice: within window x binds). Asked first: most pumps at load cannot send.
            room = limit - self.inflight[operator]
            if room > 0:
                room = min(room, link.capacity())
        while room > 0 and queue:
            room -= 1
            self._submit(link, self.queues.pop(operator))

    def _park(self, message: Message, operator: str) -> None:
        """Leave ``message`` in the store for the nodes that hold ``operator``'s binds."""
        self.held -= 1
        self.parking.add(message.id, operator)

    def link_ready(self, operator: str) -> None:
        if operator in self.links:
            self.pump(operator)
        if self._claims_now() and not self.claims.busy:
            self.claims.room_opened()

    def work_stored(self, first_id: str = "") -> None:
        """Stored work may be waiting for this node: an API worker stored messages from
        ``first_id`` up (its kick), a paused account was resumed (""). Claimed now if memory has room."""
        self.claims.nudged(first_id)
        if self._claims_now() and not self.claims.busy:
            self.claims.more()

    def _submit(self, link, m: Message) -> None:
        name = link.name
        started = self.clock.seconds()
        if m.expires_at is not None and started >= m.expires_at:
            self._end_unsent(m, "expire", Status.EXPIRED, VALIDITY_ENDED)
            return
        self.inflight[name] += 1
        self._sending[m.id] = m
        # No Deferred (submit_to): _submitted and _submit_failed each log what they raise themselves.
        link.submit_to(SubmitRequest(m.id, m.to, m.sender, m.text, m.encoding, m.udh, m.expires_at),
                       self._submitted, self._submit_failed, name, m, started)

    def _end_unsent(self, m: Message, action: str, status: Status, detail: str) -> None:
        """It will never be sent: ``expire`` (its validity ended first) or ``unroutable`` (no
        operator can take it), a final ``status``."""
        self.held -= 1
        d = self.store.act(m.id, action, self.clock.seconds(), detail)
        d.addCallbacks(lambda _: self.metrics.status_changed(status.value), self._log_failure,
                       errbackArgs=(f"{action}: storing it failed",), errbackKeywords={"message_id": m.id})

    # -- receipts ----------------------------------------------------------------------------
    def receipt_received(self, receipt: ReceiptFacts) -> Deferred:
        """Store and apply a receipt; the Deferred fires once it is durable (then the link acks)."""
        now = self.clock.seconds()
        d = self.store.apply_receipt(receipt, now, self.node, now + self.lease)
        return d.addCallbacks(lambda t: self._after([t]) if t is not None else self._held(receipt))

    def _held(self, receipt: ReceiptFacts) -> None:
        """A receipt no stored message has the SMSC id of: held for the submit it answers (its
        response may come after it). Said once, so that a receipt_id_format that matches nothing
        shows before receipt_timeout makes every message ``unknown``."""
        self.log.info("receipt held: no message has its SMSC id yet", operator=receipt.operator,
                      smsc_message_id=receipt.raw_id, stat=receipt.stat)

    def mo_received(self, mo: MoFacts) -> Deferred:
        """Store an MO (or a part of one) durably (``MoIntake``); the link answers the SMSC when this fires."""
        return self.mo_intake.received(mo)

    def bind_changed(self, operator: str, session: str, up: bool) -> None:
        # smsgw_bind_up is read from the links at each scrape (Metrics.watch_binds), not set here
        self.log.info("bind up" if up else "bind down", operator=operator, session=session)
        if up:
            self.pump(operator)
        elif operator not in self.links or not self.links[operator].is_up():
            self._reroute(operator)

    def pdu_counts(self, operator: str) -> Counter[tuple[str, str]]:
        return self.metrics.pdus.counts(operator)

    # -- after a store change ------------------------------------------------------------------
    def _after(self, transitions: list[Transition], held: bool = False) -> None:
        """Count, log and act on what the store changed. ``held``: the message was this node's."""
        requeued = pushes = False
        for t in transitions:
            m = t.message
            pushes = pushes or t.pushes > 0
            for e in t.events:
                self.metrics.messages.inc((e.status.value, e.operator or ""))  # status_changed, inline
                if e.status is Status.DELIVERED:  # the common outcome: its history is in the store
                    self.metrics.delivery_seconds.observe((e.operator or "",),
                                                          max(0.0, self.clock.seconds() - m.created_at))
                    if enabled(logging.DEBUG):  # a line filtered out costs no call to the logger
                        self.log.debug("message delivered", message_id=m.id, operator=e.operator, detail=e.detail)
                elif e.final or e.status is Status.FAILED:
                    self.log.info("message " + e.status.value, message_id=m.id, operator=e.operator,
                                  detail=e.detail)
            if t.requeue:
                requeued = True
                if not held:
                    self.held += 1
                self.enqueue(t.message)
        if held and not requeued:
            self.held -= 1
        if pushes:
            self.on_push_queued()

    def _log_failure(self, failure, what: str, **kw) -> None:
        self.log.error(what, error=failure.getErrorMessage(), **kw)
