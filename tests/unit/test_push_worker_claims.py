"""The push worker claims a message's later events behind the earlier ones it holds (SPEC §12: a
batch goes when full, with both events of a message when both wait), and never lets a later event
overtake an earlier one whose POST failed. The rig of ``test_push_worker``: a ``Clock``, an
in-memory store, the real ``Pusher`` and ``BackendResource`` over an in-memory network."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from tests.unit.test_push_worker import HeldClaims, Rig


def test_a_messages_next_event_joins_the_batch_its_earlier_one_waits_in():
    """Three submitted events wait for the linger in a batch of 5; their deliveries come: a batch
    of 5 goes at once (it waited for the linger, and then went without the deliveries)."""
    rig = Rig(batch=5)
    a, b, c = rig.messages(3)
    for m in (a, b, c):
        rig.submitted(m)
    rig.kick()
    assert rig.posts() == []  # 3 of 5: lingering
    for m in (a, b, c):
        rig.delivered(m)
    rig.kick()
    assert rig.posts() == [[("submitted", a.id), ("submitted", b.id), ("submitted", c.id),
                            ("delivered", a.id), ("delivered", b.id)]]
    rig.advance(0.2)  # c's delivery, behind nothing now, goes once it lingered
    assert rig.posts()[1:] == [[("delivered", c.id)]]
    assert rig.pending() == []


class Ordered(HeldClaims):
    """A MemoryStore whose claims run when asked but answer when the test says, and whose
    ``finish_pushes`` too (``claims`` holds both): the order of a real writer, where a claim that
    ran before a POST's outcome was stored answers before it."""

    def _held(self, result) -> Deferred:
        d: Deferred = Deferred()
        self.claims.append((result, d))
        return d

    def claim_push_jobs(self, *args, **kwargs):
        return self._held(self.inner.claim_push_jobs(*args, **kwargs).result)

    def finish_pushes(self, *args, **kwargs):
        return self._held(self.inner.finish_pushes(*args, **kwargs).result)

    def answer_all(self) -> None:
        while self.claims:
            result, d = self.claims.pop(0)
            d.callback(result)


def test_a_claim_that_ran_before_a_failed_post_was_stored_gives_its_later_events_back():
    """The POST of a's first event is on the way when its delivery is stored and claimed (behind
    it: this process holds it); the POST fails. The delivery must wait for the first event's
    retry, not go while the failure is being stored."""
    store = Ordered()
    rig = Rig(batch=1, store=store)
    [a] = rig.messages(1)
    rig.submitted(a)
    rig.backend.failing(503)
    rig.backend.slow(1.0)
    rig.worker.kick()
    store.answer_all()
    rig.net.flush()
    assert rig.posts() == [[("submitted", a.id)]]
    rig.delivered(a)
    rig.worker.kick()  # runs now: the delivery is claimed behind the submitted event held here
    rig.advance(1.0)  # the POST failed; its retry is being stored
    store.answer_all()  # the claim answers first, then the retry, then the give-back
    store.answer_all()
    rig.advance(0)
    assert rig.posts() == [[("submitted", a.id)]]
    assert [j.attempts for j in rig.pending()] == [1, 0]  # the retry waits; the delivery was given back
    rig.backend.reply_json("thanks")
    for _ in range(20):  # the retry 5 s later, then the delivery behind it (the periodic claims)
        rig.advance(0.5)
        rig.worker._tick()
        store.answer_all()
        rig.net.flush()
        store.answer_all()
    assert rig.posts() == [[("submitted", a.id)], [("submitted", a.id)], [("delivered", a.id)]]
    assert rig.pending() == []


def test_jobs_given_back_before_their_lease_ends_take_their_messages_later_jobs_along():
    """A message's first event waits here so long that its lease would end before a POST of it
    could finish: it is given back, and so is the message's next event, claimed later behind it
    (its lease ends later). Left here, the next event went first once the first was claimed again."""
    from pathlib import Path

    from smscore.config import parse_config
    from tests.unit.test_push_worker import CONFIG, SECRET, URL

    rig = Rig(batch=5, lease=1.0)
    rig.config = parse_config(CONFIG.format(secret=SECRET, url=URL, batch=5, retry_for="24h")
                              .replace('callback_linger = "200ms"', 'callback_linger = "10s"'),
                              path=Path("/etc/smsgw/gateway.toml"))
    [a] = rig.messages(1)
    rig.submitted(a)
    rig.worker.start()  # claims now: the lease is 1 + 2 (push timeout) + 10 (linger) s
    rig.advance(0.7)
    rig.delivered(a)
    rig.kick()  # the delivery joins it, claimed behind it (its lease ends 0.7 s later)
    assert rig.posts() == []
    for _ in range(44):  # at 9 s the first event's lease is too near its end: both go back, and again
        rig.advance(0.25)
    assert rig.posts() == [[("submitted", a.id), ("delivered", a.id)]]
    rig.worker.stop()


class Sweeping(HeldClaims):
    """A store that notes where each claim starts (its ``after``) and answers at once."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "afters", [])

    def __setattr__(self, name, value):
        if name == "afters":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def claim_push_jobs(self, *args, **kwargs):
        self.afters.append(kwargs["after"])
        return self.inner.claim_push_jobs(*args, **kwargs)


def test_claims_sweep_the_jobs_and_the_periodic_one_starts_from_the_first():
    """policies.claims.JobSweep: a claim a stored event kicks takes jobs above the last it read;
    the loop's claim, once an interval, starts from the first job, and finds a retry whose time
    came below the sweep (a kick's claim does not read it)."""
    store = Sweeping()
    rig = Rig(batch=1, store=store)
    a, b = rig.messages(2)
    rig.submitted(a)
    rig.backend.failing(503)
    rig.tick()  # the loop's first claim: from the first job
    assert rig.posts() == [[("submitted", a.id)]]
    [a1] = rig.pending()
    rig.backend.reply_json("thanks")
    rig.submitted(b)
    rig.kick()
    assert rig.posts()[1:] == [[("submitted", b.id)]]
    rig.advance(5.0)  # a's retry is due; its job lies below the sweep
    rig.kick()
    assert len(rig.posts()) == 2
    kicked = store.afters[1:]
    rig.tick()
    assert rig.posts()[2:] == [[("submitted", a.id)]]
    assert rig.pending() == []
    assert store.afters[0] == 0 and kicked[0] == a1.id and all(after >= a1.id for after in kicked), store.afters
    assert store.afters[len(kicked) + 1] == 0
