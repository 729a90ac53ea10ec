"""The ``smsgw`` commands that ask a running gateway, through its HTTP API as any client would:
send, status, mo, the admin actions and look-ups, reload and the stop list."""

from __future__ import annotations

import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from smscore.cli.common import DEFAULT_CONFIG, CliError


# -- HTTP clients: send, status, mo ----------------------------------------------------------------
def _api(args) -> tuple[str, ssl.SSLContext | None]:
    """The API's base URL and, for HTTPS, how to trust it: ``--url``; else the ``[http]`` section
    of ``-c`` (the default config file only when it is there: a file named with ``-c`` must be),
    whose own ``tls_cert`` is trusted besides the system's authorities; else the SPEC's
    127.0.0.1:8080."""
    if args.url:
        try:
            parts = urllib.parse.urlsplit(args.url)
            parts.port  # noqa: B018 - raises on a port that is no number
        except ValueError as exc:
            raise CliError(f"--url {args.url!r} is not a URL: {exc}", 2) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"--url must be http:// or https:// and a host, such as http://127.0.0.1:8080; "
                           f"got {args.url!r}", 2)
        return args.url.rstrip("/"), None
    if args.config == DEFAULT_CONFIG and not Path(args.config).exists():
        return "http://127.0.0.1:8080", None
    from smscore.config import ConfigError, api_address

    try:
        listen, cert = api_address(args.config)
    except ConfigError as exc:
        raise CliError(f"{args.config}: {exc.errors[0]}" if not exc.errors[0].startswith(str(args.config))
                       else exc.errors[0], 2) from None
    host = listen.host if listen.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    if cert is None:
        return f"http://{host}:{listen.port}", None
    trust = ssl.create_default_context()
    trust.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the gateway's own certificate is enough
    try:
        trust.load_verify_locations(cafile=str(cert))
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"{cert}: cannot read the API's certificate ([http] tls_cert): {exc}", 2) from None
    return f"https://{host}:{listen.port}", trust


def _http(method: str, url: str, key: str | None, body: dict | None = None,
          tls: ssl.SSLContext | None = None, what: str = "the gateway") -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30, context=tls) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"error": {"code": "http_error", "message": raw.decode("utf-8", "replace")}}
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach {what} at {url}: {reason}") from None


def _segment(value: str) -> str:
    """A value as one segment of a URL's path: a space, a non-ASCII letter, ``/`` or ``?`` in an
    id typed by hand is sent as what it is (an unknown id: 404), never as more path or a query
    (``approve 'ID/refuse?'`` refused the message)."""
    return urllib.parse.quote(value, safe="")


def _call(args, method: str, path: str, key: str | None, body: dict | None = None) -> tuple[int, object]:
    """``_http`` to the gateway ``args`` name (``_api``)."""
    base, tls = _api(args)
    return _http(method, base + path, key, body, tls)


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
    return _answer(*_call(args, "POST", "/v1/messages", _key(args), body))


def cmd_status(args) -> int:
    return _answer(*_call(args, "GET", f"/v1/messages/{_segment(args.id)}", _key(args)))


def cmd_mo(args) -> int:
    body = {"from": args.sender, "to": args.to, "text": args.text}
    if args.sim:
        return _delivered(*_http("POST", f"http://{args.sim}/mo", None, body, what="the simulator"))
    key = args.admin_key or os.environ.get("SMSGW_ADMIN_KEY")
    if not key:
        raise CliError("an admin key is needed: --admin-key KEY or SMSGW_ADMIN_KEY", 2)
    return _delivered(*_call(args, "POST", f"/v1/admin/operators/{_segment(args.operator)}/mo", key, body))


def _delivered(status: int, body) -> int:
    """An injected MO's answer: an outcome other than "delivered" (no gateway bound to the
    simulator, its window full, refused) is a failure of the command, not a success to print."""
    outcome = body.get("outcome") if isinstance(body, dict) and 200 <= status < 300 else "delivered"
    if outcome != "delivered":
        raise CliError(f"the simulated operator did not deliver the MO: {outcome}")
    return _answer(status, body)


def _admin_call(args, method: str, path: str, body: dict | None = None) -> int:
    key = args.admin_key or os.environ.get("SMSGW_ADMIN_KEY")
    if not key:
        raise CliError("an admin key is needed: --admin-key KEY or SMSGW_ADMIN_KEY", 2)
    return _answer(*_call(args, method, path, key, body))


def cmd_message_action(args) -> int:
    return _admin_call(args, "POST", f"/v1/admin/messages/{_segment(args.id)}/{args.command}")


def cmd_account_action(args) -> int:
    return _admin_call(args, "POST", f"/v1/admin/accounts/{_segment(args.account)}/{args.command}")


def cmd_reload(args) -> int:
    key = args.admin_key or os.environ.get("SMSGW_ADMIN_KEY")
    if not key:
        raise CliError("an admin key is needed: --admin-key KEY or SMSGW_ADMIN_KEY", 2)
    status, body = _call(args, "POST", "/v1/admin/reload", key)
    read = body.get("file") if isinstance(body, dict) else None
    if not args.url and isinstance(read, str) and os.path.realpath(args.config) != os.path.realpath(read):
        # -c only says where the gateway listens: it reloads the file it was started with
        print(f"smsgw: note: the gateway read {read}, not {args.config}", file=sys.stderr)
    if 200 <= status < 300 and isinstance(body, dict) and body.get("reloaded") is False:
        errors = body.get("errors") or ["the config has errors"]
        more = f" (+{len(errors) - 1} more: smsgw check-config)" if len(errors) > 1 else ""
        raise CliError(f"reload refused, the running config stays: {errors[0]}{more}")
    return _answer(status, body)


def _numbers_in(path: str) -> tuple[list[str], list[int]]:
    """The numbers of a file for ``stoplist import`` and the line of each: the first field of each
    line (CSV), ``#`` comments and blank lines aside, and a header line (a first field with no digit,
    ``number,name`` as a CRM exports it) too."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}", 2) from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text", 2) from None
    numbers, where = [], []
    for n, line in enumerate(lines, 1):
        value = line.split("#", 1)[0].strip().split(",")[0].strip()
        if value and not (not numbers and not any(c.isdigit() for c in value)):
            numbers.append(value)
            where.append(n)
    if not numbers:
        raise CliError(f"{path}: no numbers in the file", 2)
    return numbers, where


_AT_INDEX = re.compile(r"^numbers\[(\d+)\]")


def cmd_stoplist(args) -> int:
    numbers, where = _numbers_in(args.file) if args.action == "import" else (args.numbers, [])
    body: dict = {"numbers": numbers, "remove": args.action == "remove", "consent": args.consent}
    if args.account:
        body["account"] = args.account
    code = 0
    for i in range(0, len(numbers), 10000):  # large files in chunks
        body["numbers"] = numbers[i:i + 10000]
        try:
            code = _admin_call(args, "POST", "/v1/admin/stoplist", body) or code
        except CliError as exc:  # "422 invalid_number: numbers[2]: ..." of a file: its line instead
            status, _, said = str(exc).partition(": ")
            found = _AT_INDEX.match(said) if where else None
            if found is None:
                raise
            rest = said[found.end():].removeprefix(":").strip()
            raise CliError(f"{status}: {args.file} line {where[i + int(found.group(1))]}: {rest}", exc.code) from None
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
    return _admin_call(args, "GET", f"/v1/admin/numbers/{_segment(args.number)}" + _query(params))


def cmd_accounts(args) -> int:
    """Every account, or one: balance, paused, billing, profile, tps, today's volume, senders."""
    return _admin_call(args, "GET", "/v1/admin/accounts" + (f"/{_segment(args.name)}" if args.name else ""))


def _query(params: dict) -> str:
    given = {k: v for k, v in params.items() if v is not None}
    return "?" + urllib.parse.urlencode(given) if given else ""
