"""The ``smsgw`` commands that need no running gateway: check-config, init, hash-key, db upgrade
and smsc-sim."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from smscore.cli.common import CliError, load, one_line


# -- check-config ----------------------------------------------------------------------------------
def cmd_check_config(args) -> int:
    config = load(args.config)
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
        target.parent.mkdir(parents=True, exist_ok=True)  # etc/ of the default in a new folder
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
            lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
            if len(lines) > 1:  # not a key: hashing the first alone said nothing of the others
                raise CliError(f"stdin holds {len(lines)} lines: give one key a run", 2)
            key = lines[0] if lines else ""
    if not key:
        raise CliError("no key given (an argument, or one line on stdin)", 2)
    print(hash_api_key(key))
    return 0


def version() -> str:
    from smscore import version

    return version()


# -- db ------------------------------------------------------------------------------------------
def cmd_db_upgrade(args) -> int:
    config = load(args.config)
    where, before, after = upgrade_store(config)
    print(f"{where}: schema version {before} -> {after}")
    return 0


def upgrade_store(config) -> tuple[str, int, int]:
    """Create or upgrade the store's schema: (where, version before, version after)."""
    if config.store.sqlite_path is not None:
        import sqlite3

        from smscore.store import sqlite

        try:
            before, after = sqlite.upgrade(config.store.sqlite_path)
        except (sqlite3.Error, OSError) as exc:  # not a database, a folder, a path that cannot be
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CliError(f"store.url: {config.store.sqlite_path}: {reason}") from None
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
    from connectors.reactor import install

    reactor = install()  # before anything imports twisted.internet.reactor
    from connectors.smsc_sim import SimSettings, SimulatedSMSC, control_site
    from smscore import logs
    from smscore.config import ListenAddress  # noqa: F401 (same parsing rules as the config)
    from smscore.durations import parse_duration

    logs.configure(args.log_level, args.log_format)
    host, port = _host_port(args.listen, "--listen")
    try:
        delay = parse_duration(args.receipt_delay)
    except ValueError as exc:
        raise CliError(f"--receipt-delay: {exc}", 2) from None
    if args.window < 1:
        raise CliError(f"--window must be at least 1, got {args.window}", 2)
    try:
        settings = SimSettings(
            system_id=args.system_id, password=args.password, receipt_delay=delay,
            message_id_format=args.message_id_format, unreachable_prefixes=tuple(args.unreachable_prefix or ()),
            throttle_tps=args.throttle_tps)
    except ValueError as exc:  # the settings' own checks ("throttle_tps must be >= 0, ...") name the option
        name, _, rest = str(exc).partition(" ")
        raise CliError(f"--{name.replace('_', '-')} {rest}", 2) from None
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
            print(f"smsgw: cannot listen: {one_line(f.getErrorMessage())}", file=sys.stderr)
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
