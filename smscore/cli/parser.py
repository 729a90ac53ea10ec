"""The arguments of every ``smsgw`` command, and ``main``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from smscore.cli.client import (cmd_account_action, cmd_accounts, cmd_message_action, cmd_messages, cmd_mo,
                                cmd_number, cmd_reload, cmd_send, cmd_status, cmd_stoplist)
from smscore.cli.common import DEFAULT_CONFIG, CliError, one_line
from smscore.cli.local import cmd_check_config, cmd_db_upgrade, cmd_hash_key, cmd_init, cmd_smsc_sim, version
from smscore.cli.run import cmd_run


class _Parser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line and exit 2 like every ``smsgw`` error (SPEC §2):
    argparse's own is its usage (2-6 lines starting "usage:") above the message, which buries the
    message and is not what a script reading stderr expects. The line names the command and where
    its usage is (``smsgw: send: argument --max-parts: invalid int value: 'x' (see smsgw send
    --help)``); subcommands are parsers of this class too (``add_subparsers`` makes them so).
    ``--help`` prints argparse's usage and help as before."""

    def parse_known_args(self, args=None, namespace=None):
        """As argparse's, but an argument nobody knows is an error of the command it was given to
        (argparse passes it up to ``smsgw``, whose help does not list the command's options).
        Nothing here parses only the arguments it knows, so none is ever left for later."""
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("smsgw").strip()
        self.exit(2, f"smsgw: {command + ': ' if command else ''}{one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="smsgw", description="smsgw: an SMPP 3.4 SMS gateway.")
    p.add_argument("--version", action="version", version=f"smsgw {version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def with_config(sp):
        sp.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")

    def with_logs(sp):
        sp.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
        sp.add_argument("--log-format", default="json", choices=["json", "console"])

    def with_client(sp, key=True):
        with_config(sp)
        sp.add_argument("--url", help="the gateway's API base URL (default: [http] listen of the config)")
        if key:
            sp.add_argument("--key", help="the account's API key (or SMSGW_API_KEY)")

    sp = sub.add_parser("run", help="run the gateway", description="Run the gateway with a config file.")
    with_config(sp)
    with_logs(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("check-config", help="validate a config file",
                        description="Report every configuration error with its key path.")
    with_config(sp)
    sp.set_defaults(func=cmd_check_config)

    sp = sub.add_parser("init", help="write an example config file",
                        description="Write the full example config (every key) to PATH, to edit "
                                    "and check with check-config. An existing file is kept unless --force.")
    sp.add_argument("path", nargs="?", default=DEFAULT_CONFIG, metavar="PATH",
                    help=f"the file to write (default {DEFAULT_CONFIG}, where the other commands look)")
    sp.add_argument("--force", action="store_true", help="overwrite PATH when it exists")
    sp.set_defaults(func=cmd_init)

    sp = sub.add_parser("hash-key", help='print an API key as "sha256:<hex>" for the config',
                        description='Print the "sha256:<hex>" form of an API key: the config may hold it instead '
                                    "of the key. Reads the key from stdin when not given.")
    sp.add_argument("key", nargs="?", help="the key (default: read from stdin, so it stays out of the history)")
    sp.set_defaults(func=cmd_hash_key)

    sp = sub.add_parser("db", help="database maintenance", description="Database maintenance.")
    dbsub = sp.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True
    up = dbsub.add_parser("upgrade", help="create or upgrade the schema",
                          description="Create or upgrade the store's schema to this version.")
    with_config(up)
    up.set_defaults(func=cmd_db_upgrade)

    sp = sub.add_parser("smsc-sim", help="run a standalone simulated SMSC",
                        description="A simulated SMSC (SMPP 3.4 server) for tests and demos.")
    sp.add_argument("--listen", default="127.0.0.1:2775", help="HOST:PORT to accept binds on")
    sp.add_argument("--name", default="sim", help="name used in logs and message ids")
    sp.add_argument("--system-id", default=None, help="required system_id (default: accept any)")
    sp.add_argument("--password", default=None, help="required password (default: accept any)")
    sp.add_argument("--receipt-delay", default="200ms", help="delay before the delivery receipt")
    sp.add_argument("--message-id-format", default="hex", choices=["hex", "dec"])
    sp.add_argument("--unreachable-prefix", action="append", metavar="PREFIX",
                    help="numbers starting with PREFIX get an UNDELIV receipt (repeatable)")
    sp.add_argument("--throttle-tps", type=int, default=0, help="answer ESME_RTHROTTLED above this rate (0: off)")
    sp.add_argument("--window", type=int, default=10,
                    help="outstanding deliver_sm (receipts, MO) per session (default 10)")
    sp.add_argument("--control", default=None, metavar="HOST:PORT",
                    help="HTTP control port: POST /mo injects an MO (see `smsgw mo --sim`)")
    with_logs(sp)
    sp.set_defaults(func=cmd_smsc_sim)

    sp = sub.add_parser("send", help="send an MT message through the HTTP API",
                        description="Send an MT message through a running gateway's HTTP API.")
    with_client(sp)
    sp.add_argument("--to", required=True, action="append", help="destination number (repeatable)")
    sp.add_argument("--text", required=True)
    sp.add_argument("--from", dest="sender")
    sp.add_argument("--profile")
    sp.add_argument("--encoding", choices=["auto", "gsm7", "latin1", "ucs2"])
    sp.add_argument("--max-parts", type=int)
    sp.add_argument("--reference")
    sp.add_argument("--send-at", dest="send_at", help="RFC 3339 time to send at")
    sp.add_argument("--callback-url", dest="callback_url")
    sp.set_defaults(func=cmd_send)

    sp = sub.add_parser("status", help="show a message and its history",
                        description="Show a message and its full history.")
    with_client(sp)
    sp.add_argument("id")
    sp.set_defaults(func=cmd_status)

    def with_admin(sp):
        with_client(sp, key=False)
        sp.add_argument("--admin-key", help="an [admin] api key of the gateway (or SMSGW_ADMIN_KEY)")

    for name, what in (("approve", "release a message waiting for approval"),
                       ("refuse", "refuse a message waiting for approval (it is stopped and refunded)")):
        sp = sub.add_parser(name, help=what, description=what[0].upper() + what[1:] + ".")
        with_admin(sp)
        sp.add_argument("id", help="the message id")
        sp.set_defaults(func=cmd_message_action)
    for name, what in (("pause", "pause an account: its messages wait as 'paused'"),
                       ("resume", "resume a paused account: its messages are sent")):
        sp = sub.add_parser(name, help=what, description=what[0].upper() + what[1:] + ".")
        with_admin(sp)
        sp.add_argument("account")
        sp.set_defaults(func=cmd_account_action)
    sp = sub.add_parser("reload", help="apply the config file again",
                        description="Apply the config file again (like SIGHUP): accounts, keywords, profiles and "
                                    "prices at once; binds whose settings changed reconnect.")
    with_admin(sp)
    sp.set_defaults(func=cmd_reload)
    sp = sub.add_parser("stoplist", help="edit the stop list, the do-not-call list, consents",
                        description="Add or remove numbers: an account's stop list (--account), the do-not-call "
                                    "list (no --account), or an account's consents (--account --consent), which "
                                    "let it send to numbers on the do-not-call list or its stop list (a stop "
                                    "entry added later withdraws the consent).")
    stsub = sp.add_subparsers(dest="action", metavar="ACTION")
    stsub.required = True
    for action, what in (("add", "add numbers"), ("remove", "remove numbers"),
                         ("import", "add the numbers of a file (one per line; # comments; a CSV's first column)")):
        ap = stsub.add_parser(action, help=what, description=what[0].upper() + what[1:] + ".")
        with_admin(ap)
        ap.add_argument("--account", help="the account (default: the do-not-call list)")
        ap.add_argument("--consent", action="store_true", help="the account's consents instead")
        if action == "import":
            ap.add_argument("file")
        else:
            ap.add_argument("numbers", nargs="+")
        ap.set_defaults(func=cmd_stoplist)

    sp = sub.add_parser("messages", help="find messages of every account (admin look-up)",
                        description="Messages of every account, newest first, filtered; JSON with next_cursor "
                                    "(give it to --cursor for the next page).")
    with_admin(sp)
    sp.add_argument("--account")
    sp.add_argument("--status")
    sp.add_argument("--to", help="destination number")
    sp.add_argument("--operator")
    sp.add_argument("--since", help="created at or after (RFC 3339 or YYYY-MM-DD)")
    sp.add_argument("--until", help="created before (RFC 3339 or YYYY-MM-DD)")
    sp.add_argument("--limit", type=int, help="at most this many (1-1000, default 100)")
    sp.add_argument("--cursor", help="next_cursor of the page before")
    sp.set_defaults(func=cmd_messages)
    sp = sub.add_parser("number", help="everything about one number (admin look-up)",
                        description="One number: its MT and MO (newest first), the operator learned for it and "
                                    "its recent failures, stop-list entries, do-not-call and consents.")
    with_admin(sp)
    sp.add_argument("number")
    sp.add_argument("--limit", type=int, help="at most this many MT and MO (1-1000, default 100)")
    sp.add_argument("--cursor", help="next_cursor of the MT page before")
    sp.set_defaults(func=cmd_number)
    sp = sub.add_parser("accounts", help="show accounts: balance, pause, limits (admin look-up)",
                        description="Every account, or the one named: balance, paused, billing, profile, tps, "
                                    "today's volume against its daily limit, senders.")
    with_admin(sp)
    sp.add_argument("name", nargs="?", help="one account (default: every one)")
    sp.set_defaults(func=cmd_accounts)

    sp = sub.add_parser("mo", help="inject an MO into a simulated operator",
                        description="Inject a mobile-originated SMS into a simulated operator, as if a phone "
                                    "had sent it.")
    with_client(sp, key=False)
    sp.add_argument("--operator", default="sim_a", help="the simulated operator of the gateway (default sim_a)")
    sp.add_argument("--sim", metavar="HOST:PORT", help="a standalone smsc-sim's control port instead")
    sp.add_argument("--admin-key", help="an [admin] api key of the gateway (or SMSGW_ADMIN_KEY)")
    sp.add_argument("--from", dest="sender", required=True, help="the phone number sending")
    sp.add_argument("--to", required=True, help="the shortcode or number sent to")
    sp.add_argument("--text", required=True)
    sp.set_defaults(func=cmd_mo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"smsgw: {one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `smsgw messages | head`: the reader has what it wanted
        # what is still buffered for the closed pipe would fail again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
