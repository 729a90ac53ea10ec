"""Customers' ESMEs in the gateway (SPEC §13): what a bind, a submit, a query and a cancel mean
here, and how receipts and MO reach the ESMEs durably.

Why: ``connectors.smpp.server`` lets ESMEs in and speaks SMPP; it knows nothing of accounts,
messages or the store. This module is the application it calls, and it only reuses what the HTTP
API does: a submit is ``POST /v1/messages`` for one number (``submission.build_messages``, the
account's rate limit, ``Pipeline.accept``: the answer comes once the message is stored); a query
is ``GET /v1/messages/{id}``; a cancel is ``DELETE``. Refusals keep the HTTP API's error codes,
which the server turns into SMPP statuses.

Theory of operation
-------------------
- A message submitted over SMPP carries ``callback_url = "smpp"`` and, as ``callback_statuses``,
  the receipts its ``registered_delivery`` asked for (every final outcome, failures only, or
  none). So its receipts are push jobs like any status callback, stored in the transaction that
  changes the status, in order per message; they are not HTTP callbacks.
- A part the ESME concatenated itself (UDH, or SAR made into a UDH by the server) is a message
  of one part that keeps its UDH to the operator; ``validity_period`` is the message's
  ``expires_at``: the operator gets it, and the pipeline expires a message still unsent by then.
- MO for a keyword with ``url = "smpp"`` are push jobs to the same target (``smscore.mo``).
- ``SmppDeliveries`` claims those jobs (``claim_push_jobs(smpp=True)``) for the accounts that have
  a receiver bound on this node, builds each receipt, or the MO's deliver_sm, from its push body
  (``connectors.smpp.deliver_fields``; a receipt's body carries the message's sender, submit
  and done times, text preview and whether it was cancelled: ``esme``, so sending it reads
  nothing), and hands it to the server. The ESME's ``deliver_sm_resp`` ends the job; no answer
  (30 s), a lost connection or no receiver gives it back at once, to go on the next receiver (or
  after a rebind); another status tries again after 30 s. The deliveries that ended in one reactor
  turn (an ESME answers many deliver_sm in one read) are stored together, in one
  ``finish_pushes``, at the end of that turn, and the next claim is queued after them.
"""

from __future__ import annotations

import hmac
from collections import Counter
from datetime import datetime, timezone
from string import hexdigits

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from connectors.smpp import deliver_fields
from connectors.smpp.defs import STATUS_NAMES
from connectors.smpp.outbox import NO_RECEIVER
from connectors.smpp.server import ClientSession, CustomerSMPPServer, Refused
from connectors.smpp.submit_fields import CustomerSubmit, ReceiptRequest
from policies.callbacks import FINAL, FINAL_FAILURES
from smscore.api.render import store_errors
from smscore.claiming import give_back_earlier
from smscore.errors import ApiError
from smscore.logs import get_logger
from smscore.model import SMPP_TARGET, Status, is_cancel
from smscore.submission import build_messages, udh_part_problem

#: an SMPP command_status by its name, as a refused submit's error text gives it
SMPP_STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}

#: registered_delivery → which status events become receipts (a ``policies.callbacks`` selection)
RECEIPTS = {ReceiptRequest.ALL: FINAL, ReceiptRequest.FAILURES: FINAL_FAILURES, ReceiptRequest.NONE: ""}
#: seconds before a receipt the ESME answered with an error status is sent again (SPEC §13)
RESEND_AFTER = 30.0
#: deliveries that did not reach an ESME's answer: sent again at once to a receiver (the 30 s of
#: SPEC §13 were the response timeout)
AT_ONCE = frozenset({"timeout", "connection lost", NO_RECEIVER})


def serve_esmes(*, config_source, settings, reactor, pipeline, store, rate_limit, metrics, owner: str,
                lease: float, cancel_at_main=None,
                family: str | None = None) -> tuple[CustomerSMPPServer, SmppDeliveries]:
    """The SMPP server for customers' ESMEs (``settings``: the config's ``[smpp_server]``) and the
    deliveries of their receipts and MO, wired to each other, in the process that serves them
    (``owner``: its lease owner; ``family``: the node it is part of; ``cancel_at_main``: see
    CustomerSmpp)."""
    deliveries: SmppDeliveries | None = None
    customers = CustomerSmpp(config_source=config_source, pipeline=pipeline, store=store, clock=reactor,
                             rate_limit=rate_limit, metrics=metrics, cancel_at_main=cancel_at_main,
                             on_receiver_bound=lambda account: deliveries.kick())
    server = CustomerSMPPServer(reactor, authenticate=customers.authenticate, max_binds=customers.max_binds,
                                handler=customers, enquire_link=settings.enquire_link, window=settings.window)
    deliveries = SmppDeliveries(store=store, server=server, clock=reactor, node=owner, lease=lease, family=family)
    metrics.watch_smpp_sessions(server.session_counts)
    return server, deliveries


class CustomerSmpp:
    """The application behind the SMPP server: one per gateway node (its first API worker, or the
    node's only process)."""

    def __init__(self, *, config_source, pipeline, store, clock, rate_limit, metrics=None,
                 on_receiver_bound=lambda account: None, cancel_at_main=None) -> None:
        self.config_source = config_source
        self.pipeline = pipeline
        #: when the ESMEs are served by an API worker: ``(message id, account)`` -> Deferred[(HTTP
        #: status, answer)], the cancel done by the main worker, which sends the messages
        self.cancel_at_main = cancel_at_main
        self.store = store
        self.clock = clock
        self.rate_limit = rate_limit
        self.metrics = metrics
        #: a receiver or transceiver of ``account`` bound: what waited for one can go now
        self.on_receiver_bound = on_receiver_bound
        self.log = get_logger(component="smpp-customers")

    # -- binds ---------------------------------------------------------------------------------
    def authenticate(self, system_id: str, password: str) -> str | None:
        """The account whose ESME credentials these are, else None (which one failed is not said)."""
        for name, account in self.config_source().accounts.items():
            smpp = account.smpp
            if smpp is not None and smpp.system_id == system_id:
                ok = hmac.compare_digest(smpp.password.encode("utf-8"), password.encode("utf-8"))
                return name if ok else None
        return None

    def max_binds(self, account: str) -> int:
        found = self.config_source().accounts.get(account)
        return found.smpp.max_binds if found is not None and found.smpp is not None else 0

    def receiver_bound(self, session: ClientSession) -> None:
        self.on_receiver_bound(session.account)

    def pdu_counts(self, account: str) -> Counter[tuple[str, str]]:
        """Where the connections of ``account``'s sessions count their PDUs (``pdus_total``)."""
        return self.metrics.pdus.counts(f"client:{account}") if self.metrics is not None else Counter()

    # -- requests --------------------------------------------------------------------------------
    def submit(self, session: ClientSession, submit: CustomerSubmit) -> Deferred:
        """Store the message as ``POST /v1/messages`` would; fires with its id once stored."""
        config = self.config_source()
        account = config.accounts.get(session.account)
        if account is None:  # removed by a reload while bound
            raise Refused("unavailable", "the account is gone")
        now = self.clock.seconds()
        body = {"to": submit.destination, "text": submit.text, "encoding": submit.encoding._value_}
        if submit.source:
            body["from"] = submit.source
        if submit.send_at is not None:
            body["send_at"] = datetime.fromtimestamp(submit.send_at, timezone.utc).isoformat()
        try:
            self.rate_limit.take(account)
            messages = build_messages(body, account, config, now)
        except ApiError as exc:
            raise Refused(exc.code, exc.message) from None
        if submit.udh:
            problem = udh_part_problem(submit.text, submit.encoding, submit.udh, messages[0].profile, config)
            if problem is not None:
                raise Refused("text_too_long", problem)
        for m in messages:
            m.callback_url = SMPP_TARGET
            m.callback_statuses = RECEIPTS[submit.receipts]
            m.expires_at = submit.expires_at
            if submit.udh:  # a part the ESME concatenated: one SMS, sent on with its own UDH
                m.udh, m.parts = submit.udh, 1
        d = self.pipeline.accept(messages)
        d.addCallbacks(lambda stored: stored[0].id, _refusal)
        return d

    def query(self, session: ClientSession, message_id: str) -> Deferred:
        d = self.store.get(message_id)

        def found(m):
            if m is None or m.account != session.account:
                raise Refused("not_found", "no such message of this account")
            final = next((e for e in reversed(m.events) if e.final), None)
            return deliver_fields.QueryAnswer(status=m.status.value, final_at=final.at if final else None,
                                              err=_error_code(m.error), cancelled=_cancelled(m))

        d.addCallback(found)
        return d

    def cancel(self, session: ClientSession, message_id: str) -> Deferred:
        if self.cancel_at_main is not None:
            d = self.cancel_at_main(message_id, session.account)
            d.addCallback(_cancelled_at_main)
            d.addErrback(_refusal)
            return d
        d = maybeDeferred(self.pipeline.cancel, message_id, session.account)
        d.addCallbacks(lambda m: m.id, _refusal)
        return d


def _cancelled_at_main(answer: tuple[int, dict]) -> str:
    """The main worker's answer to a cancel, as ``DELETE`` gives it: the id, or ``Refused``."""
    status, body = answer
    if status == 200:
        return body["id"]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or status >= 500:
        raise Refused("unavailable", f"the main worker answered {status}")
    raise Refused(error.get("code", "unavailable"), error.get("message", ""))


def _refusal(failure):
    """The store's refusals as the server's (``Refused``); anything else stays a failure."""
    try:
        store_errors(failure)
    except ApiError as exc:
        raise Refused(exc.code, exc.message) from None
    if failure.check(Refused):
        return failure
    raise Refused("unavailable", failure.getErrorMessage())


def _error_code(error: str | None) -> str:
    """The operator's error code in a message's error text: a receipt's (``err=NNN``), or the
    command_status of a submit it refused, by its SMPP 3.4 name (``ESME_RINVDSTADR`` → ``11``) or,
    for a code without one (an SMSC's own, 0x400-0x4FF), as ``connectors.smpp.defs.status_name``
    writes it (``0x00000401`` → ``1025``); else ""."""
    if not error:
        return ""
    for word in error.replace(",", " ").split():
        if word.startswith("err=") and word[4:].isdigit():
            return word[4:]
        status = SMPP_STATUS_CODES.get(word)
        if status is not None:
            return str(status)
        if len(word) == 10 and word.startswith("0x") and all(c in hexdigits for c in word[2:]):
            return str(int(word, 16))
    return ""


def _cancelled(m) -> bool:
    return m.status is Status.STOPPED and any(is_cancel(e) for e in m.events)


def _esme_body(m, body: dict) -> dict | None:
    """A receipt job's body with the ``esme`` part read from the stored message ``m``."""
    if m is None:
        return None
    return {**body, "id": m.id, "to": m.to, "error": m.error,
            "esme": {"sender": m.sender, "submitted_at": m.created_at, "done_at": _at(body["at"]), "text": m.text,
                     "cancelled": _cancelled(m)}}


class SmppDeliveries:
    """Receipts for customers' ESMEs: durable push jobs handed to the SMPP server (see the module
    docstring). Polls every ``interval`` and whenever kicked (a receipt stored, a receiver bound)."""

    def __init__(self, *, store, server, clock, node: str, lease: float, interval: float = 1.0,
                 family: str | None = None) -> None:
        self.store = store
        self.server = server
        self.clock = clock
        self.node = node  # this process's lease owner
        self.family = node if family is None else family  # the node it is part of
        self._stopped = False
        self._giving_back = False
        self.lease = lease
        self.interval = interval
        self._claiming = False
        self._again = False
        self._loop: LoopingCall | None = None
        self._sending: set[int] = set()  # jobs whose deliver_sm waits for its answer, or its finish
        self._ended: _Ended | None = None  # deliveries that ended this turn, not stored yet
        self._ended_call = None  # the call that stores them
        self.log = get_logger(component="smpp-deliveries", node=node)

    def start(self) -> Deferred:
        """Give back every delivery the node held before a restart (this process is the only one of
        the node that delivers to ESMEs, and had held nothing yet: ``policies.leases``), so that
        they go at once to the ESMEs that bind again; then poll. Fires once polling started."""
        self._giving_back = True  # no claim meanwhile: the give-back would undo it
        d = give_back_earlier(self.store.release_push_jobs(self.family, smpp=True), self.log, "deliveries to ESMEs")
        return d.addCallback(lambda _: self._start_loop())

    def _start_loop(self) -> None:
        self._giving_back = False
        if self._stopped:
            return
        self._loop = LoopingCall(self.kick)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        """Stop polling. What ended, or ends from now on (the server fails what waits as it stops),
        goes to the store at once: the store closes after the server."""
        self._stopped = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._ended is not None:
            self._store_ended()

    def kick(self, *_args) -> Deferred | None:
        """Claim what the bound receivers have room for; None when no claim starts (one is under
        way, or no receiver has room): called for every receipt stored, it makes no Deferred then."""
        if self._giving_back:  # the loop claims once start() gave back the node's earlier ones
            return None
        if self._claiming:
            self._again = True
            return None
        room = {account: self.server.capacity(account) for account in self._receiving()}
        room = {account: n for account, n in room.items() if n > 0}
        if not room:
            return None
        self._claiming = True
        now = self.clock.seconds()
        d = self.store.claim_push_jobs(self.node, now, now + self.lease, sum(room.values()),
                                       smpp=True, accounts=sorted(room))
        d.addCallbacks(self._claimed, self._failed)
        return d

    def _receiving(self) -> set[str]:
        return {s.account for s in self.server.sessions() if s.receives}

    def _failed(self, failure) -> None:
        self._claiming = False
        self.log.error("claiming receipts for ESMEs failed", error=failure.getErrorMessage())

    def _claimed(self, jobs) -> None:
        self._claiming = False
        for job in jobs:
            if job.id in self._sending:
                # Its lease ran out while its deliver_sm still waits for the answer (the lease and
                # the response timeout are both 30 s by default): this claim renewed the lease; the
                # answer, or its timeout, decides what comes next. Sent again now, the ESME got it
                # twice within a second.
                continue
            self._sending.add(job.id)
            self._deliver(job)
        if self._again:
            self._again = False
            self.kick()

    def _deliver(self, job) -> None:
        """Hand ``job`` to the server, which calls ``_finish`` with how it ended; what fails on the
        way is ``_not_delivered``. ``_finish`` catches what it raises itself."""
        if job.kind == "mo":
            body = job.body
            try:
                item = deliver_fields.mo(body["from"], body["to"], body["text"], job.subject)
            except ValueError as exc:  # an address that does not fit SMPP: nothing will change it
                self.log.error("MO cannot go to an ESME", mo_id=job.subject, error=str(exc))
                self._sending.discard(job.id)
                d = self.store.finish_pushes(self.clock.seconds(), done=[job.id], mo_events=[
                    (job.subject, "push abandoned", f"not deliverable over SMPP: {exc}")])
                d.addErrback(self._not_delivered, job)
                return
            self.server.deliver(job.account, item, self._finish, job)
        elif "esme" in job.body:  # what the deliver_sm says came with the job
            try:
                self._send_receipt(job.body, job)
            except Exception:  # noqa: BLE001 - logged as every failure on the way
                self._not_delivered(Failure(), job)
        else:  # a job stored before receipts carried it: read the message
            d = self.store.get(job.subject)
            d.addCallback(lambda m: self._send_receipt(_esme_body(m, job.body), job))
            d.addErrback(self._not_delivered, job)

    def _send_receipt(self, receipt: dict | None, job) -> None:
        """Hand the receipt to the server (``_finish`` is told how it ended); what raises before
        that is the caller's to give to ``_not_delivered``."""
        if receipt is None:  # purged meanwhile: nothing to tell
            self._finish(None, job)
            return
        esme, error = receipt["esme"], receipt["error"]
        item = deliver_fields.receipt(
            receipt["id"], receipt["status"], to=receipt["to"], sender=esme["sender"],
            submitted_at=esme["submitted_at"], done_at=esme["done_at"], text=esme["text"],
            err=_error_code(error) if error else "", cancelled=esme["cancelled"])  # most have no error
        self.server.deliver(job.account, item, self._finish, job)

    def _not_delivered(self, failure, job) -> None:
        self._sending.discard(job.id)  # taken again when its lease runs out
        self.log.error("receipt for an ESME failed", job=job.id, error=failure.getErrorMessage())

    def _finish(self, result, job) -> None:
        """Note how the delivery ended (``result``: the server's DeliveryResult, None when there was
        nothing to send), to be stored with the others that end in this reactor turn. What this
        raises is ``_not_delivered``'s, here: the server only logs it."""
        try:
            ended = self._ended
            if ended is None:
                ended = self._ended = _Ended()
                if not self._stopped:
                    self._ended_call = self.clock.callLater(0, self._store_ended)
            if result is None or result.done:
                ended.done.append(job)
                if job.kind == "mo":
                    ended.mo_events.append((job.subject, "pushed", "to the account's ESME over SMPP"))
            elif result.reason in AT_ONCE:  # on the next receiver, or the next one to bind
                ended.release.append(job)
            else:  # the ESME said no (an error status, a generic_nack): again in 30 s
                ended.retry.setdefault(result.reason, []).append(job)
            if self._stopped:
                self._store_ended()
        except Exception:  # noqa: BLE001 - logged as every failure on the way
            self._not_delivered(Failure(), job)

    def _store_ended(self) -> None:
        """Store what ended since the last call: one ``finish_pushes`` (one more for each reason
        an ESME gave to refuse), then claim. That claim runs after them in the store's queue: it
        sees those jobs done or given back."""
        ended, self._ended = self._ended, None
        call, self._ended_call = self._ended_call, None
        if call is not None and call.active():  # stopping: stored now instead
            call.cancel()
        now = self.clock.seconds()
        if ended.done or ended.release:
            self._store_finish(ended.done + ended.release, now, done=[job.id for job in ended.done],
                               mo_events=ended.mo_events, release=[job.id for job in ended.release], owner=self.node)
        for reason, jobs in ended.retry.items():
            self._store_finish(jobs, now, retry=[job.id for job in jobs], retry_at=now + RESEND_AFTER, error=reason)
        self.kick()

    def _store_finish(self, jobs: list, now: float, **outcome) -> None:
        for job in jobs:
            self._sending.discard(job.id)  # before the kick: its claim may take the job again at once
        try:
            d = self.store.finish_pushes(now, **outcome)
        except Exception:  # noqa: BLE001 - logged as every failure on the way
            failure = Failure()
            for job in jobs:
                self._not_delivered(failure, job)
            return
        d.addErrback(self._finish_failed, jobs)

    def _finish_failed(self, failure, jobs: list) -> None:
        for job in jobs:
            self.log.error("finishing a delivery to an ESME failed", job=job.id, error=failure.getErrorMessage())


class _Ended:
    """The deliveries that ended in one reactor turn, by what the store is to do with their jobs."""

    __slots__ = ("done", "mo_events", "release", "retry")

    def __init__(self) -> None:
        self.done: list = []  # acknowledged (or nothing to send): the jobs go
        self.mo_events: list[tuple[str, str, str]] = []  # (mo id, status, detail) of the MO among them
        self.release: list = []  # not answered: given back, to go at once to a receiver
        self.retry: dict[str, list] = {}  # refused, by the ESME's reason: again in RESEND_AFTER


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
