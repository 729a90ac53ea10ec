"""The ``smsgw`` command (SPEC §2).

Every command has ``--help``; every error is one line on stderr and a non-zero exit (2 for usage and
config errors, 1 for everything else). Commands that talk to a running gateway do so through its
HTTP API, as any client would.

- ``common``: the command's error and reading a config file;
- ``run``: ``smsgw run``, a node (the supervisor and its workers, or one process);
- ``local``: what needs no running gateway (check-config, init, hash-key, db upgrade, smsc-sim);
- ``client``: what asks a running gateway (send, status, mo, admin actions and look-ups, reload,
  stop list);
- ``parser``: the arguments of every command, and ``main``.
"""

from smscore.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
