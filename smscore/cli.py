"""The ``smsgw`` command (SPEC §2).

Every command has ``--help``; every error is one line on stderr and a non-zero exit (2 for usage and
config errors, 1 for everything else). Commands that talk to a running gateway do so through its
HTTP API, as any client would.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_CONFIG = "etc/gateway.toml"


class CliError(Exception):
    """A one-line error for the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _load(path: str):
    from smscore.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"smsgw: {line}", file=sys.stderr)
        raise CliError(f"{path}: {len(exc.errors)} configuration error(s)", 2) from None


# -- run ---------------------------------------------------------------------------------------
def cmd_run(args) -> int:
    from smscore import logs
    from smscore.supervisor import WORKER_ENV, Supervisor, WorkerSpec, die_with_parent, resolve_processes

    config = _load(args.config)
    logs.configure(args.log_level, args.log_format)
    spec = os.environ.get(WORKER_ENV)
    if spec is not None:  # a worker process started by the supervisor below
        die_with_parent()
        worker = WorkerSpec.from_env(spec)
        import structlog

        structlog.contextvars.bind_contextvars(worker=worker.index)
        return _run_gateway(config, worker)
    count = resolve_processes(config.gateway.processes)
    if count == 1:
        return _run_gateway(config, None)
    log = logs.get_logger(component="supervisor", node=config.gateway.node)
    if config.store.auto_upgrade:
        _upgrade(config)  # once, before the workers open the store
    supervisor = Supervisor(config, ["run", "-c", args.config, "--log-level", args.log_level,
                                     "--log-format", args.log_format], count, log)
    try:
        supervisor.open_sockets()
    except OSError as exc:
        raise CliError(f"cannot listen: {exc.strerror or exc}") from None
    log.info("starting workers", processes=count)
    return supervisor.run()


def _run_gateway(config, worker) -> int:
    """One process of the gateway: the whole node (``worker`` None) or its part of it."""
    from twisted.internet import reactor

    from smscore import logs
    from smscore.app import Gateway

    log = logs.get_logger(component="cli")
    # The store's writer thread gives up the GIL for every SQL statement and must get it back from
    # the reactor thread; at Python's default 5 ms a busy reactor made each batch, and so each 2xx,
    # wait. 1 ms measured best with ../shared/peers (docs/benchmarks.md: ~10% more messages a second
    # than 5 ms, fewer than 0.5 ms).
    sys.setswitchinterval(0.001)
    gateway = Gateway(config, reactor, worker=worker)
    _tune_gc()
    outcome = {"code": 0}

    def started_failed(failure):
        log.error("gateway failed to start", error=failure.getErrorMessage())
        print(f"smsgw: cannot start: {failure.getErrorMessage()}", file=sys.stderr)
        outcome["code"] = 1
        if reactor.running:
            reactor.stop()

    def start():
        d = gateway.start()
        d.addErrback(started_failed)

    stopping = {"done": False}

    def shutdown(*_):
        if stopping["done"]:
            return
        stopping["done"] = True
        d = gateway.stop()
        d.addErrback(lambda f: log.error("unclean stop", error=f.getErrorMessage()))
        d.addBoth(lambda _: reactor.stop())

    def on_signal(signum, _frame):
        reactor.callFromThread(shutdown)

    def on_hup(signum, _frame):
        reactor.callFromThread(gateway.reload_node)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hup)
    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    return outcome["code"]


def _tune_gc() -> None:
    """Fewer, cheaper cycle collections for a long-running gateway. Every message makes short-lived
    containers (Deferreds, PDUs, rows): at Python's default (a collection every 700 allocations)
    the collector took 4-8 % of a worker's samples (py-spy) in an SMPP-in run. The objects built at
    start (modules, config, tables) are frozen out of every collection, and the youngest generation
    is collected every 10,000 allocations: ~12 % less gateway CPU a message in alternating runs of
    scripts/bench_smpp.py (docs/benchmarks.md). Cycles are still collected; memory stays flat."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


# -- check-config ----------------------------------------------------------------------------------
def cmd_check_config(args) -> int:
    config = _load(args.config)
    print(f"{args.config}: OK ({len(config.operators)} operators, {len(config.profiles)} profiles, "
          f"{len(config.accounts)} accounts, {len(config.keywords)} keywords)")
    return 0


# -- init ----------------------------------------------------------------------------------------
#: The example `init` writes: etc/gateway.example.toml, which the package carries (pyproject.toml's
#: package-data). The full example rather than the demo's etc/gateway.toml: a file written outside
#: the checkout is a start for a real node, and this one has every key, keeps its SQLite store
#: beside itself (the demo's sits in the checkout's var/), and still runs as it is (its simulated
#: operator delivers; its SMPP operator waits for a real host).
EXAMPLE_CONFIG = ("smscore", "examples/gateway.example.toml")


def cmd_init(args) -> int:
    from importlib.resources import files

    target = Path(args.path)
    if target.is_dir():
        raise CliError(f"{target}: is a folder; name the file to write, e.g. {target / 'gateway.toml'}", 2)
    package, resource = EXAMPLE_CONFIG
    text = files(package).joinpath(resource).read_text(encoding="utf-8")
    try:
        with open(target, "w" if args.force else "x", encoding="utf-8") as out:  # "x": never overwrite
            out.write(text)
    except FileExistsError:
        raise CliError(f"{target}: already exists; --force overwrites it", 2) from None
    except OSError as exc:
        raise CliError(f"{target}: cannot write: {exc.strerror or exc}") from None
    print(f"""wrote {target}: the full example config, with every key.
Next:
  1. edit it: [operators.*] (your SMSC accounts), [accounts.*] and their api_keys, [admin] api_keys;
     a secret may be written "env:NAME" or "file:/path" instead of its value
  2. smsgw check-config -c {target}
  3. smsgw run -c {target}
Every key is explained in docs/configuration.md; deployment in docs/deployment.md.""")
    return 0


def cmd_hash_key(args) -> int:
    """Print the "sha256:<hex>" form of an API key, to write in the config instead of the key.
    The key comes from stdin (a prompt on a terminal) unless given, so it stays out of the shell's
    history and the process list."""
    from smscore.config.values import hash_api_key

    key = args.key
    if key is None:
        if sys.stdin.isatty():
            import getpass

            key = getpass.getpass("API key: ")
        else:
            key = sys.stdin.readline().rstrip("\r\n")
    if not key:
        raise CliError("no key given (an argument, or one line on stdin)", 2)
    print(hash_api_key(key))
    return 0


def _version() -> str:
    from smscore import version

    return version()


# -- db ------------------------------------------------------------------------------------------
def cmd_db_upgrade(args) -> int:
    config = _load(args.config)
    where, before, after = _upgrade(config)
    print(f"{where}: schema version {before} -> {after}")
    return 0


def _upgrade(config) -> tuple[str, int, int]:
    """Create or upgrade the store's schema: (where, version before, version after)."""
    if config.store.sqlite_path is not None:
        from smscore.store import sqlite

        before, after = sqlite.upgrade(config.store.sqlite_path)
        return str(config.store.sqlite_path), before, after
    import psycopg2

    from smscore.store import pg_schema

    try:
        before, after = pg_schema.upgrade(config.store.url)
    except psycopg2.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(f"{config.store.redacted_url}: {message}") from None
    return config.store.redacted_url, before, after


# -- smsc-sim ------------------------------------------------------------------------------------
def cmd_smsc_sim(args) -> int:
    from twisted.internet import reactor

    from connectors.smsc_sim import SimSettings, SimulatedSMSC, control_site
    from smscore import logs
    from smscore.config import ListenAddress  # noqa: F401 (same parsing rules as the config)
    from smscore.durations import parse_duration

    logs.configure(args.log_level, args.log_format)
    host, port = _host_port(args.listen, "--listen")
    settings = SimSettings(
        system_id=args.system_id, password=args.password, receipt_delay=parse_duration(args.receipt_delay),
        message_id_format=args.message_id_format, unreachable_prefixes=tuple(args.unreachable_prefix or ()),
        throttle_tps=args.throttle_tps)
    sim = SimulatedSMSC(settings, reactor, name=args.name)
    sim.window = args.window
    log = logs.get_logger(component="smsc-sim")

    exit_code = [0]

    def start():
        d = sim.listen(host, port)

        def listening(actual):
            info = {"listen": f"{host}:{actual}"}
            if args.control:
                chost, cport = _host_port(args.control, "--control")
                p = reactor.listenTCP(cport, control_site(sim), interface=chost)
                info["control"] = f"{chost}:{p.getHost().port}"
            log.info("simulated SMSC listening", **info)

        def failed(f):
            # either listener (SMPP or --control): a port in use is a clear error and exit 1, not a
            # simulator that runs on without the port it was asked for
            print(f"smsgw: cannot listen: {f.getErrorMessage()}", file=sys.stderr)
            exit_code[0] = 1
            sim.stop().addBoth(lambda _: reactor.stop())

        d.addCallback(listening)
        d.addErrback(failed)

    def on_signal(signum, _frame):
        reactor.callFromThread(lambda: sim.stop().addBoth(lambda _: reactor.stop()))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    return exit_code[0]


def _host_port(value: str, what: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CliError(f"{what}: expected HOST:PORT, got {value!r}", 2)
    return host, int(port)


# -- HTTP clients: send, status, mo ----------------------------------------------------------------
def _base_url(args) -> str:
    if args.url:
        return args.url.rstrip("/")
    if args.config and Path(args.config).exists():
        listen = _load(args.config).http.listen
        return f"http://{listen.host}:{listen.port}"
    return "http://127.0.0.1:8080"


def _http(method: str, url: str, key: str | None, body: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"error": {"code": "http_error", "message": raw.decode("utf-8", "replace")}}
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the gateway at {url}: {reason}") from None


def _answer(status: int, body) -> int:
    if 200 <= status < 300:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    err = body.get("error", {}) if isinstance(body, dict) else {}
    field = f" (field {err['field']})" if err.get("field") else ""
    raise CliError(f"{status} {err.get('code', 'error')}: {err.get('message', body)}{field}")


def _key(args) -> str:
    key = args.key or os.environ.get("SMSGW_API_KEY")
    if not key:
        raise CliError("an API key is needed: --key KEY or SMSGW_API_KEY", 2)
    return key


def cmd_send(args) -> int:
    body = {"to": args.to if len(args.to) > 1 else args.to[0], "text": args.text}
    for name in ("profile", "encoding", "reference", "send_at", "callback_url"):
        value = getattr(args, name)
        if value is not None:
            body[name] = value
    if args.sender is not None:
        body["from"] = args.sender
    if args.max_parts is not None:
        body["max_parts"] = args.max_parts
    return _answer(*_http("POST", f"{_base_url(args)}/v1/messages", _key(args), body))


def cmd_status(args) -> int:
    return _answer(*_http("GET", f"{_base_url(args)}/v1/messages/{args.id}", _key(args)))


def cmd_mo(args) -> int:
    body = {"from": args.sender, "to": args.to, "text": args.text}
    if args.sim:
        return _answer(*_http("POST", f"http://{args.sim}/mo", None, body))
    key = args.admin_key or os.environ.get("SMSGW_ADMIN_KEY")
    if not key:
        raise CliError("an admin key is needed: --admin-key KEY or SMSGW_ADMIN_KEY", 2)
    url = f"{_base_url(args)}/v1/admin/operators/{args.operator}/mo"
    return _answer(*_http("POST", url, key, body))


def _admin_call(args, method: str, path: str, body: dict | None = None) -> int:
    key = args.admin_key or os.environ.get("SMSGW_ADMIN_KEY")
    if not key:
        raise CliError("an admin key is needed: --admin-key KEY or SMSGW_ADMIN_KEY", 2)
    return _answer(*_http(method, f"{_base_url(args)}{path}", key, body))


def cmd_message_action(args) -> int:
    return _admin_call(args, "POST", f"/v1/admin/messages/{args.id}/{args.command}")


def cmd_account_action(args) -> int:
    return _admin_call(args, "POST", f"/v1/admin/accounts/{args.account}/{args.command}")


def cmd_reload(args) -> int:
    key = args.admin_key or os.environ.get("SMSGW_ADMIN_KEY")
    if not key:
        raise CliError("an admin key is needed: --admin-key KEY or SMSGW_ADMIN_KEY", 2)
    status, body = _http("POST", f"{_base_url(args)}/v1/admin/reload", key)
    if 200 <= status < 300 and isinstance(body, dict) and body.get("reloaded") is False:
        errors = body.get("errors") or ["the config has errors"]
        more = f" (+{len(errors) - 1} more: smsgw check-config)" if len(errors) > 1 else ""
        raise CliError(f"reload refused, the running config stays: {errors[0]}{more}")
    return _answer(status, body)


def cmd_stoplist(args) -> int:
    if args.action == "import":
        numbers = []
        try:
            lines = Path(args.file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CliError(f"{args.file}: {exc.strerror or exc}", 2) from None
        for line in lines:
            value = line.split("#", 1)[0].strip().split(",")[0].strip()
            if value:
                numbers.append(value)
        if not numbers:
            raise CliError(f"{args.file}: no numbers in the file", 2)
    else:
        numbers = args.numbers
    body: dict = {"numbers": numbers, "remove": args.action == "remove", "consent": args.consent}
    if args.account:
        body["account"] = args.account
    code = 0
    for i in range(0, len(numbers), 10000):  # large files in chunks
        body["numbers"] = numbers[i:i + 10000]
        code = _admin_call(args, "POST", "/v1/admin/stoplist", body) or code
    return code


# -- admin look-ups (SPEC §14): JSON as the API answers it ------------------------------------------
def cmd_messages(args) -> int:
    """Messages of every account, newest first; ``--cursor`` takes the answer's ``next_cursor``."""
    params = {name: getattr(args, name) for name in ("account", "status", "to", "operator", "since", "until",
                                                       "cursor", "limit")}
    return _admin_call(args, "GET", "/v1/admin/messages" + _query(params))


def cmd_number(args) -> int:
    """One number: its MT and MO, what was learned, stop list, do-not-call and consents."""
    params = {"limit": args.limit, "cursor": args.cursor}
    return _admin_call(args, "GET", f"/v1/admin/numbers/{urllib.parse.quote(args.number, safe='')}" + _query(params))


def cmd_accounts(args) -> int:
    """Every account, or one: balance, paused, billing, profile, tps, today's volume, senders."""
    return _admin_call(args, "GET", "/v1/admin/accounts" + (f"/{urllib.parse.quote(args.name)}" if args.name else ""))


def _query(params: dict) -> str:
    given = {k: v for k, v in params.items() if v is not None}
    return "?" + urllib.parse.urlencode(given) if given else ""


# -- the parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smsgw", description="smsgw: an SMPP 3.4 SMS gateway.")
    p.add_argument("--version", action="version", version=f"smsgw {_version()}")
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
    sp.add_argument("path", nargs="?", default="gateway.toml", metavar="PATH",
                    help="the file to write (default ./gateway.toml)")
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
                                    "let it send to numbers on the do-not-call list.")
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
        print(f"smsgw: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
