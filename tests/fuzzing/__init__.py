"""Fuzzing inputs and checks shared by the tests and ``scripts/fuzz.py``.

Why a package of its own: the small runs in the tests (hypothesis drives a ``random.Random``
through ``st.randoms()``) and the large runs on demand (a seeded ``random.Random``) must fuzz the
same things the same way, so a finding at scale replays as a test. ``smpp`` mutates valid PDUs and
feeds them to the gateway's two SMPP roles; ``http`` writes random requests to the API and judges
the answers.
"""
