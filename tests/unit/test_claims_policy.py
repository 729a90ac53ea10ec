"""policies.claims: the sweep a node's claims make through the backlog, and the push claims'
through the jobs."""

from policies.claims import (JobSweep, Sweep, after_claim, after_job_claim, announced, job_claim_from, just_below,
                             next_claim, periodic_claim)

LEASE, INTERVAL = 30.0, 0.5


def ids(*numbers: int) -> list[str]:
    return [f"{n:024x}" for n in numbers]


def test_full_claims_go_on_from_their_last_id_and_a_short_one_ends_the_sweep_there():
    s = next_claim(Sweep(), 10.0, LEASE, INTERVAL)
    assert s == Sweep("", 10.0)
    s, again = after_claim(s, ids(1, 2), 2, 10.0, INTERVAL)
    assert (s, again) == (Sweep(ids(2)[0], 10.0), True)
    s = next_claim(s, 10.1, LEASE, INTERVAL)
    assert s.after == ids(2)[0]
    s, again = after_claim(s, ids(3), 2, 10.1, INTERVAL)  # the end: no more to take now
    assert (s, again) == (Sweep(ids(3)[0], 10.0, True), False)
    s, again = after_claim(s, [], 2, 10.2, INTERVAL)  # nothing more above it: the end stays where it was
    assert (s, again) == (Sweep(ids(3)[0], 10.0, True), False)


def test_after_the_end_work_announced_above_it_is_claimed_from_there_and_below_it_from_its_first_id():
    end = Sweep(ids(100)[0], 10.0, True)
    assert next_claim(end, 10.2, LEASE, INTERVAL) is end  # nothing announced (a link has room)
    assert next_claim(end, 10.2, LEASE, INTERVAL, ids(150)[0]) is end  # stored above the end
    # another API worker committed later messages it had numbered earlier: from just below the first
    assert next_claim(end, 10.2, LEASE, INTERVAL, ids(90)[0]) == Sweep(ids(89)[0], 10.0, True)
    assert next_claim(end, 10.2, LEASE, INTERVAL, ids(100)[0]) == Sweep(ids(99)[0], 10.0, True)


def test_after_the_end_a_claim_starts_over_from_the_first_id_when_it_cannot_know_where_the_work_is():
    end = Sweep(ids(100)[0], 10.0, True)
    assert next_claim(end, 10.2, LEASE, INTERVAL, "") == Sweep("", 10.2)  # an announcement without an id
    assert next_claim(end, 10.2, LEASE, INTERVAL, "0-7") == Sweep("", 10.2)  # below, not the gateway's
    assert next_claim(end, 10.2, LEASE, INTERVAL, ids(0)[0]) == Sweep("", 10.2)  # nothing is below it
    # an interval after the sweep began: work given back below the end (a stopping node's, a lease
    # run out, an operator bound since) is found
    assert next_claim(end, 10.5, LEASE, INTERVAL, ids(150)[0]) == Sweep("", 10.5)
    assert next_claim(end, 10.5, LEASE, INTERVAL) == Sweep("", 10.5)


def test_a_sweep_through_a_backlog_starts_over_a_lease_after_it_began_even_while_claims_are_full():
    s = Sweep("z", 10.0)
    assert next_claim(s, 39.9, LEASE, INTERVAL) is s
    assert next_claim(s, 39.9, LEASE, INTERVAL, "") is s  # announcements wait for the sweep's end
    assert next_claim(s, 40.0, LEASE, INTERVAL) == Sweep("", 40.0)


def test_a_sweep_that_ends_an_interval_or_more_after_it_began_starts_over_at_once():
    s = Sweep(ids(7)[0], 10.0)  # through a backlog since 10.0
    assert after_claim(s, ids(8), 2, 12.0, INTERVAL) == (Sweep(ids(8)[0], 10.0, True), True)
    assert next_claim(Sweep(ids(8)[0], 10.0, True), 12.0, LEASE, INTERVAL) == Sweep("", 12.0)
    s = Sweep("", 12.0)  # from the first id and short: done
    assert after_claim(s, ids(1), 2, 13.0, INTERVAL) == (Sweep(ids(1)[0], 12.0, True), False)


def test_a_claim_with_no_room_is_never_full():
    assert after_claim(Sweep("", 1.0), [], 0, 1.0, INTERVAL) == (Sweep("", 1.0, True), False)


def test_announcements_keep_the_lowest_id_and_one_without_an_id_means_anywhere():
    assert announced(None, "b") == "b"
    assert announced("b", "a") == "a" and announced("a", "b") == "a"
    assert announced("a", "") == "" and announced("", "a") == "" and announced(None, "") == ""


def test_just_below_an_id_is_the_greatest_id_under_it():
    assert just_below(f"{256:024x}") == f"{255:024x}"
    assert just_below(f"{256:024x}") < f"{256:024x}"
    assert just_below("0" * 24) == "" and just_below("ABC") == "" and just_below("0" * 23 + "g") == ""


# -- push jobs ------------------------------------------------------------------------------------
def test_push_claims_go_on_from_the_last_job_read_and_the_periodic_one_from_the_first():
    sweep = JobSweep()
    assert job_claim_from(sweep, periodic=False) == 0  # nothing read yet
    sweep = after_job_claim(sweep, [3, 7, 9], asked=3)  # full: read up to 9
    assert sweep.after == 9 and job_claim_from(sweep, periodic=False) == 9
    assert job_claim_from(sweep, periodic=True) == 0
    sweep = after_job_claim(sweep, [12], asked=5)  # short: read to the end
    assert sweep.after == 12
    assert after_job_claim(sweep, [], asked=5) == sweep  # nothing above: still past everything


def test_a_periodic_claim_keeps_the_sweep_past_what_it_read_or_where_it_stopped():
    sweep = JobSweep(50)
    # from the first job, short: it read every job, and those above 50 too
    assert after_job_claim(sweep, [4, 8], asked=10).after == 50
    assert after_job_claim(sweep, [4, 60], asked=10).after == 60
    # from the first job, full: it stopped at 8, what lies between 8 and 50 is unread since
    assert after_job_claim(sweep, [4, 8], asked=2).after == 8
    assert after_job_claim(sweep, [], asked=0) == sweep


def test_the_periodic_claim_comes_every_interval_or_ten_times_what_it_took():
    due, sweep = periodic_claim(JobSweep(), 100.0, 1.0)
    assert due and sweep.started == 100.0
    assert periodic_claim(sweep, 100.5, 1.0) == (False, sweep)
    due, sweep = periodic_claim(sweep, 101.0, 1.0)
    assert due and sweep.started == 101.0
    sweep = after_job_claim(sweep, [5], asked=10, periodic_took=0.05)  # under a tenth: every interval
    assert periodic_claim(sweep, 102.0, 1.0)[0]
    sweep = after_job_claim(sweep, [5], asked=10, periodic_took=0.4)  # millions waiting: every 4 s
    assert not periodic_claim(sweep, 104.9, 1.0)[0]
    due, sweep = periodic_claim(sweep, 105.0, 1.0)
    assert due and sweep.took == 0.4
    assert after_job_claim(sweep, [6], asked=10).took == 0.4  # a claim above the sweep says nothing of it
