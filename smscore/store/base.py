"""The store interface every implementation follows.

Every method returns a Deferred. A mutating call's Deferred fires only after the transaction that
holds it has committed durably, so a caller may answer 2xx, acknowledge a receipt, or tell an SMSC
"got it" from its callback and nothing is lost. Implementations batch concurrent calls into one
transaction (group commit); callers never see a batch.

Work is claimed with leases so that several nodes can share one database (PostgreSQL): a message
that is ``queued`` belongs to the node named in its ``owner`` until ``lease_until``; a node renews the
leases it holds while it lives; ``claim()`` takes unowned messages and those whose lease expired.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from twisted.internet.defer import Deferred

from connectors.api import MoFacts, ReceiptFacts  # noqa: F401 (types in docstrings)
from policies.callbacks import ALL, first_status_pushed
from smscore.model import SMPP_TARGET, Message
from smscore.store.rules import PURGE_CHUNK
from smscore.transitions import UntriedOperators


def own_status_callbacks(message: Message) -> tuple[str, str] | None:
    """Where a message's status callbacks go and which, from the message alone (no account):
    its ``callback_url`` and ``callback_statuses`` (default "all")."""
    if not message.callback_url:
        return None
    return message.callback_url, ALL if message.callback_statuses is None else message.callback_statuses


def told_at_acceptance(messages: Sequence[Message], status_callbacks_for) -> list[tuple[Message, tuple[str, str]]]:
    """The messages being stored whose first status is pushed (``policies.callbacks.
    first_status_pushed``: over SMPP, whose ``submit_sm_resp`` does not say it), with the target
    of the push. Every store queues those in the transaction that stores the messages."""
    out = []
    for m in messages:
        if m.callback_url != SMPP_TARGET or not m.events:  # the HTTP API's 202 reports it
            continue
        first = m.events[0]
        target = status_callbacks_for(m)
        if target is not None and first_status_pushed(target[1], first.status._value_, first.final,
                                                      answered_with_it=False):
            out.append((m, target))
    return out


def _no_operator_left(message: Message) -> Sequence[str]:
    return ()


def _no_cost(operator: str, number: str) -> Decimal | None:
    return None


@dataclass(frozen=True)
class StoreRules:
    """What a store needs to know from the node that runs it, given when the store is built:

    - ``untried(message)``: the operators of its profile still to try (failover; none: final);
    - ``status_callbacks_for(message)``: ``(URL, selection)`` for its status callbacks (its own URL,
      else its account's; its own ``callback_statuses``, else its account's, read when the event
      happens), or None; only selected events get a push job;
    - ``cost_of(operator, number)``: what one part costs through an operator (None: unknown, 0);
    - ``config_source()``: the node's current config, for the account rules (None: rules off,
      as for a bare store in tests);
    - ``writer``: the name under which this store keeps its own share of counters that several
      writers add to at once (an account's daily count): the node's lease owner, stable across
      restarts.
    """

    untried: Callable[[Message], Sequence[str]] = _no_operator_left
    status_callbacks_for: Callable[[Message], tuple[str, str] | None] = own_status_callbacks
    cost_of: Callable[[str, str], Decimal | None] = _no_cost
    config_source: Callable[[], object] | None = None
    writer: str = ""


def check_finish(retry, retry_at: float | None, release, owner: str | None) -> None:
    """What every store's ``finish_pushes`` refuses before it does anything: a retry without its
    time, a release without the owner that holds the jobs (it would match no job)."""
    if retry and retry_at is None:
        raise ValueError("retry needs retry_at")
    if release and owner is None:
        raise ValueError("release needs the owner that holds the jobs")


class StoreError(Exception):
    """The store could not do what was asked (not found is not an error: it returns None)."""


class Store(ABC):
    """What the pipeline and the HTTP API need from a status store."""

    #: see StoreRules (each store takes them in its constructor)
    untried: UntriedOperators
    status_callbacks_for = staticmethod(own_status_callbacks)
    writer = ""

    def _take_rules(self, rules: StoreRules | None) -> None:
        rules = rules or StoreRules()
        self.untried = rules.untried
        self.status_callbacks_for = rules.status_callbacks_for
        self.cost_of = rules.cost_of
        self.config_source = rules.config_source
        self.writer = rules.writer

    @abstractmethod
    def open(self) -> Deferred:
        """Connect and (when asked) create or upgrade the schema."""

    @abstractmethod
    def close(self) -> Deferred:
        """Finish pending work and close."""

    @abstractmethod
    def accept(self, messages: Sequence[Message], owner: str | None, lease_until: float) -> Deferred:
        """Store new messages, each with its first event, claimed by ``owner`` (or unclaimed when
        ``owner`` is None). Fires with None once durable."""

    @abstractmethod
    def claim(self, owner: str, now: float, lease_until: float, limit: int,
              own_before: float | None = None, skip: Sequence[str] = (), after: str = "",
              ended_before: float | None = None, skip_profiles: Sequence[str] = ()) -> Deferred:
        """Claim up to ``limit`` sendable messages (``queued``, ``send_at`` due) that nobody holds or
        whose lease expired (and, with ``own_before``, those leased to ``owner`` until before that
        time: what an earlier process of ``owner`` held, a restart, whose leases all end before
        the first lease this process gives itself does),
        except those parked for an operator in ``skip`` (``park``), with ids above ``after`` (a
        claimer walking a backlog goes on where its last claim ended instead of walking past what
        it holds again). ``ended_before``: a lease counts as expired only if it ended before this
        time, not just before ``now`` (``smscore.claiming``: a lease that ran out while the store
        was out of reach is its holder's to renew first). Fires with a list of Message (without
        events), oldest first. ``skip_profiles``: profiles none of whose operators can take a
        message now (``policies.routing.blocked_profiles``): their messages stay in the store."""

    @abstractmethod
    def release_due(self, now: float, limit: int = 1000) -> Deferred:
        """Move ``scheduled`` messages whose ``send_at`` has come to ``queued`` (with an event).
        Fires with how many moved."""

    @abstractmethod
    def renew(self, owner: str, lease_until: float, held: Sequence[str] = (), since: float | None = None) -> Deferred:
        """Extend every lease ``owner`` holds; with ``since``, only those ending at or after it
        (what this process of ``owner`` leased: an earlier one's leases end before, see ``claim``'s
        ``own_before``; left alone they run out, and claims take them back). Fires with the ids of
        ``held`` (what ``owner`` holds in memory, waiting to be submitted) whose lease it did not
        extend: no longer ``queued`` and leased to ``owner``, since ops or a customer changed them
        through another node or process (a pause, a cancel), or another node claimed them since
        (resumed meanwhile). ``owner`` must not submit those."""

    @abstractmethod
    def release(self, owner: str, message_ids: Sequence[str]) -> Deferred:
        """Give claimed messages back (unowned), e.g. when a node cannot send them now."""

    @abstractmethod
    def park(self, owner: str, parked: Sequence[tuple[str, str]]) -> Deferred:
        """Give claimed messages back, each ``(message id, operator)`` left for the nodes holding
        that operator's binds: a ``claim`` that skips the operator passes it by."""

    @abstractmethod
    def heartbeat(self, node: str, now: float, ttl: float) -> Deferred:
        """Record that ``node`` is alive at ``now``; fires with every node known, this one
        included, as ``policies.cluster.Seen`` sorted by name: its last heartbeat, and since when
        it has been heard from without a gap of ``ttl`` (this heartbeat keeps the ``since`` of the
        node's previous one when that was less than ``ttl`` ago, else starts it at ``now``).
        Nodes not heard from for ``FORGET_AFTER`` times ``ttl`` are forgotten."""

    @abstractmethod
    def leave(self, node: str, seen_at: float) -> Deferred:
        """``node`` stops: it is recorded as last heard from at ``seen_at`` (the cluster passes a
        lease ago, so that no node counts it from now on; policies.cluster, "Restarts")."""

    @abstractmethod
    def record_submit(self, message_id: str, operator: str, keys: Sequence[str], at: float,
                      owner: str | None = None, lease_until: float | None = None) -> Deferred:
        """The SMSC of ``operator`` accepted every part; ``keys[i]`` is part i's normalized SMSC id.
        Receipts that arrived before this (held as orphans) are applied now. Fires with a list of
        Transition: the submit itself first, then one per orphan receipt applied."""

    @abstractmethod
    def record_submit_failed(self, message_id: str, operator: str, detail: str, at: float) -> Deferred:
        """A permanent submit error on ``operator``. Fires with the Transition (``requeue`` when
        another operator of the profile is left to try)."""

    @abstractmethod
    def apply_receipt(self, receipt: ReceiptFacts, at: float, owner: str | None = None,
                      lease_until: float | None = None) -> Deferred:
        """Correlate a receipt by (operator, key) and apply it. Fires with the Transition, or None
        when no message matched yet (the receipt is held and matched by a later record_submit).
        A message that goes back to ``queued`` (failover) is claimed by ``owner``."""

    @abstractmethod
    def expire_unanswered(self, older_than: float, now: float, waited: float, limit: int = 1000) -> Deferred:
        """Messages ``submitted`` or ``buffered`` whose last change is before ``older_than`` become
        ``unknown`` (no final receipt within ``waited`` seconds). Fires with their Transitions."""

    @abstractmethod
    def store_mo(self, mo: MoFacts, at: float, route=None, owner: str | None = None,
                 lease_until: float = 0.0) -> Deferred:
        """Store an MO durably. A whole one fires with its MoMessage. A part of a concatenated one
        is kept (a repeated part is ignored) and fires with None, except the part that completes
        its message: that fires with the reassembled MoMessage.

        With ``route`` (``route(mo, spent) -> MoRouting``, see ``smscore.mo``), a whole MO is routed
        in the same transaction: its account/keyword/payload, history, spend, stop list entries,
        push job and reply messages (claimed by ``owner``) are stored with it; ``mo.routing`` holds
        the decision."""

    @abstractmethod
    def expire_mo_parts(self, older_than: float, now: float, route=None, owner: str | None = None,
                        lease_until: float = 0.0) -> Deferred:
        """Concatenated MOs whose first part arrived before ``older_than`` and which are still
        incomplete are stored with the parts that came, and a note (and routed, as store_mo).
        Fires with their MoMessages."""

    @abstractmethod
    def get_mo(self, mo_id: str) -> Deferred:
        """Fires with the MoMessage (with its history) or None."""

    @abstractmethod
    def inbox(self, account: str, after: int, limit: int) -> Deferred:
        """MO routed to ``account``'s keywords with inbox position > ``after``, oldest first."""

    @abstractmethod
    def updates(self, account: str, after: int, limit: int, status: str | None = None,
                to: str | None = None, updated_since: float | None = None) -> Deferred:
        """(update position, Message) of ``account``'s messages changed after position ``after``,
        in the order they changed (each message once, at its last change). Replies the gateway
        sent from the account's keywords are the account's messages too."""

    @abstractmethod
    def claim_push_jobs(self, owner: str, now: float, lease_until: float, limit: int, *, smpp: bool = False,
                        accounts: Sequence[str] | None = None, after: int = 0,
                        skip_accounts: Sequence[str] = ()) -> Deferred:
        """Claim up to ``limit`` due push jobs that nobody holds (or whose lease expired), in id
        order (a restarted node gives its own back first: ``release_push_jobs``). A job is claimed
        only with every earlier job of its subject, which must be claimable now too: a job waiting
        for its retry or held by another node holds the later jobs of its subject back, so jobs
        of one subject go out in order. An HTTP push ``owner`` holds already (due, its lease
        running) does not hold back the later ones: the push worker keeps them behind it.
        Fires with PushJobs, oldest first.

        HTTP pushes, or with ``smpp`` the deliveries to customers' ESMEs (url ``"smpp"``, SPEC §13),
        of every account or only of ``accounts``.

        ``after``: the claimer's sweep (``policies.claims.JobSweep``). A store may take only jobs
        above that id, and then an earlier free job of a subject at or below it holds back the
        subject's later jobs too (the claim from the first job takes them together); or it may
        read every job, as with ``after`` 0. ``skip_accounts``: accounts whose jobs this claim leaves
        in the store (their share of the claimer is full, ``policies.callbacks.crowded``)."""

    @abstractmethod
    def release_push_jobs(self, node: str, keep: Sequence[str] = (), *, smpp: bool = False) -> Deferred:
        """A process of ``node`` starts: give back every HTTP push job (with ``smpp``, every
        delivery to customers' ESMEs) held by ``node`` or one of its processes, except those of
        ``keep``, its other processes running now (``policies.leases.given_back_at_start``), so
        that they go out at once, whichever process held them before the restart. Fires with
        how many."""

    @abstractmethod
    def finish_pushes(self, at: float, *, done=(), retry=(), retry_at: float | None = None, error: str = "",
                      release=(), mo_events=(), replies=(), owner: str | None = None,
                      lease_until: float = 0.0, replies_owner: str | None = None,
                      tried_at: float | None = None) -> Deferred:
        """Record what came of one push (a job or a batch of jobs), in one transaction: job ids
        ``done`` are deleted, ``retry`` ids are due again at ``retry_at`` (one more attempt, the
        lease given back), ``release`` ids held by ``owner`` are given back untried (a release
        without ``owner`` raises ValueError: it would match no job); MO history events (mo id,
        status, detail) and reply messages (claimed by ``replies_owner``, or stored unclaimed when
        it is None) are stored too.

        ``tried_at``: when the failed attempt of the ``retry`` jobs was made. A job that had no
        attempt before keeps it as its ``first_at``, from then on the start of its retry window
        (``[push] retry_for`` counts from the first attempt, not from when the job was queued: a
        job held back behind an earlier one of its subject must not use up its window waiting).
        Without it ``first_at`` stays as it is (deliveries to ESMEs, which count from queueing)."""

    @abstractmethod
    def pending_push_jobs(self) -> Deferred:
        """Every push job still to deliver (tests, ops)."""

    @abstractmethod
    def count_push_jobs(self) -> Deferred:
        """Fires with {kind: HTTP push jobs still to deliver, due or waiting for a retry} of every
        node (``smsgw_push_backlog``): one read every few seconds by one process per node.
        Deliveries to customers' ESMEs (url ``"smpp"``) wait for a bind, not a backend: not counted."""

    @abstractmethod
    def is_stopped(self, account: str, number: str) -> Deferred:
        """Whether ``number`` is on ``account``'s stop list."""

    @abstractmethod
    def get(self, message_id: str) -> Deferred:
        """Fires with the Message and its full history (events), or None."""

    @abstractmethod
    def count_by_status(self) -> Deferred:
        """Fires with {status: count} (for tests, the bench and readiness)."""

    @abstractmethod
    def count_queued(self) -> Deferred:
        """Fires with the number of ``queued`` messages of every node (SPEC §15 ``max_backlog``):
        one cheap read, made every second by each process that accepts messages."""

    # -- accounts, ops actions, stop lists, idempotency, export, retention ---------------------
    # With a ``config_source`` (``() -> Config``, set by the gateway) ``accept`` applies the account
    # rules of ``policies.admission`` (stop list, do-not-call, daily volume, pause, prepaid charge,
    # refusing a request whole with InsufficientBalance or NoPrice), claims attach what
    # ``policies.learning`` learned about each number, and every change teaches it and refunds
    # what ended before it was submitted. Without one (bare stores in tests) the rules are off.

    @abstractmethod
    def ensure_accounts(self, balances: dict) -> Deferred:
        """Give each account its opening balance once (the store keeps the balance after that)."""

    @abstractmethod
    def account_state(self, account: str) -> Deferred:
        """Fires with (balance, paused)."""

    @abstractmethod
    def topup(self, account: str, amount, at: float) -> Deferred:
        """Add ``amount`` (negative: a correction), queueing the balance notices it crosses. Fires
        with the new balance."""

    @abstractmethod
    def set_paused(self, account: str, paused: bool, at: float) -> Deferred:
        """Pause (queued messages wait as ``paused``) or resume (they are queued again, unclaimed).
        Fires with the messages changed."""

    @abstractmethod
    def act(self, message_id: str, action: str, at: float, detail: str, account: str | None = None) -> Deferred:
        """``approve`` / ``refuse`` / ``cancel`` a message (of ``account`` when given). Fires with the
        message and its history; fails with NotFound or Conflict (``smscore.store.rules``). A queued
        message another node or process holds in memory changes all the same: that holder learns it
        at its next lease renewal (``renew``) and drops it; until then it may still submit it
        (the bound: docs/postgresql.md)."""

    @abstractmethod
    def stoplist_change(self, numbers: Sequence[str], *, account: str | None = None, remove: bool = False,
                        consent: bool = False, at: float = 0.0, source: str = "ops") -> Deferred:
        """Add (or remove) numbers to an account's stop list, the do-not-call list (no account) or
        an account's consents. A number added to an account's stop list loses that account's
        consent (the later of the two wins: a consent lets messages through both lists). Fires
        with how many entries changed."""

    @abstractmethod
    def accept_once(self, messages: Sequence[Message], owner: str | None, lease_until: float, *, account: str,
                    key: str, body_hash: str, render, at: float) -> Deferred:
        """``accept`` under an idempotency key: fires with None when stored now (``render(messages)``
        is kept as the answer to repeats for 24 h), with that first answer when the key came with
        the same body, fails with Conflict(None) when it came with another."""

    @abstractmethod
    def answered_before(self, account: str, key: str, body_hash: str, at: float) -> Deferred:
        """The first answer kept under an idempotency key (as ``accept_once`` keeps it), read
        without storing anything: the dict, None when the key was not used in the last 24 h,
        Conflict(None) when it came with another body. For a repeat that must not be refused
        while ``accept_once`` is not asked (the backlog is full: SPEC §4, a retry gets the first
        answer)."""

    @abstractmethod
    def export(self, account: str, start: float, end: float, limit: int = 1_000_000) -> Deferred:
        """The account's messages created in [start, end), oldest first (without history)."""

    @abstractmethod
    def purge(self, now: float, retention: float, orphan_age: float, limit: int = PURGE_CHUNK) -> Deferred:
        """Delete final messages (and MO) older than ``retention``, idempotency keys past 24 h and
        orphan receipts older than ``orphan_age``: at most ``limit`` messages and ``limit`` MO a
        call. Fires with how many messages and MO went; the caller calls again while that
        reaches ``limit``."""

    def is_ready(self) -> bool:
        """True while the store answers."""
        return True


    # -- admin look-ups (SPEC §14; the types: smscore.store.lookups) ----------------------------
    # Reads only, newest first, paged by id: ``before`` is the last id the previous page ended
    # with (None: from the newest). They run outside the write queue, like ``get``.

    @abstractmethod
    def find_messages(self, query, before: str | None, limit: int, events: bool = False) -> Deferred:
        """Messages of every account passing ``query`` (a MessageQuery) with id < ``before``,
        newest first, at most ``limit``; with ``events``, each with its history (else none)."""

    @abstractmethod
    def find_mo(self, query, before: str | None, limit: int) -> Deferred:
        """MO passing ``query`` (a MoQuery) with id < ``before``, newest first, without history."""

    @abstractmethod
    def number_facts(self, number: str) -> Deferred:
        """Fires with the NumberFacts of ``number``: what was learned, stop-list and do-not-call
        entries, consents."""

    @abstractmethod
    def stoplist_entries(self, *, number: str | None = None, account: str | None = None,
                         after: tuple[str, str] | None = None, limit: int = 100) -> Deferred:
        """StopEntries (of ``number``, of ``account``; ``DO_NOT_CALL`` names the do-not-call list)
        in (account, number) order after ``after`` = (account, number), at most ``limit``."""

    @abstractmethod
    def consent_entries(self, *, number: str | None = None, account: str | None = None,
                        after: tuple[str, str] | None = None, limit: int = 100) -> Deferred:
        """ConsentEntries (of ``number``, of ``account``) in (account, number) order after ``after``
        = (account, number), at most ``limit``."""

    @abstractmethod
    def account_states(self, day: str) -> Deferred:
        """Fires with {account: AccountState} of every account the store knows, with the messages
        counted on ``day`` (``YYYY-MM-DD``, UTC)."""
