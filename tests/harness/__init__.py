"""One harness for what tests and scripts start and wait on, used by both (STYLE.md, "Tests"):

- ``net``: free loopback ports, a port that listens, HTTP status and JSON calls;
- ``waiting``: waiting on a condition, bounded, saying what was awaited (never a fixed sleep):
  ``wait_until`` in plain threads, ``eventually`` on the running reactor;
- ``pg``: throwaway databases on a PostgreSQL server, and a one-off query.

Scripts put the checkout's root on ``sys.path`` and import ``tests.harness.…`` like the tests.
"""
