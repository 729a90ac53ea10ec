"""What the API reads from a request: the JSON body, query parameters, pages and times.

Each reader refuses a bad input with the ``ApiError`` (400, 413) that names the field, so the
handlers in ``customer`` and ``admin`` only ever see values they can use.
"""

from __future__ import annotations

import json
import re

import orjson

from smscore.errors import ApiError

MAX_BODY = 1 << 20  # 1 MiB: a list of 1000 numbers and a long text fit many times over
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def read_json(request):
    """The request body as JSON: 413 over ``MAX_BODY``, 400 when it is not JSON."""
    data = request.content.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise ApiError(413, "too_large", f"The request body is over {MAX_BODY} bytes.")
    try:
        body = orjson.loads(data)  # strict: UTF-8 only, no NaN, nesting at most 1024 deep
    except orjson.JSONDecodeError:
        body = _lenient(data)
    if _may_repeat_a_key(data, body):
        _refuse_repeated_keys(data)
    return body


def _lenient(data: bytes):
    """JSON that orjson refuses for a reason RFC 8259 allows: a ``\\ud800`` escape, a lone half of
    a character (UTF-8 bodies only). The field that holds it is then refused by name, as broken
    text, rather than the whole body as "not JSON"."""
    try:
        text = data.decode("utf-8")
        if "\\u" not in text:  # no escape at all: orjson's refusal stands
            raise ValueError
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


_KEY_END = re.compile(rb'"\s*:')


def _may_repeat_a_key(data: bytes, body) -> bool:
    """Whether ``data`` may name a key twice in one object. ``{"to": "1", "to": "2"}`` parses as
    its last ``to`` and a client's bug went unseen: every key of the text is then more than the
    keys parsed. Counted cheaply (a key ends ``":``); a text holding ``":`` in a string is checked
    the slow way, which then answers."""
    return len(_KEY_END.findall(data)) != _keys(body)


def _keys(value) -> int:
    """The keys of every object in ``value`` (a walk, not a recursion: JSON may nest 1024 deep)."""
    count, todo = 0, [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            count += len(item)
            todo.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            todo.extend(v for v in item if isinstance(v, (dict, list)))
    return count


def _refuse_repeated_keys(data: bytes) -> None:
    def pairs(items):
        seen = set()
        for key, _ in items:
            if key in seen:
                raise ApiError(400, "invalid_request", f"Field {key!r} is given more than once.", key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(data.decode("utf-8", "surrogatepass"), object_pairs_hook=pairs)
    except RecursionError:  # deeper than Python's own parser goes: refused as orjson's limit is
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None


def query(request) -> dict[str, str]:
    """Query parameters, one value each (a repeated one is refused)."""
    out = {}
    for key, values in request.args.items():
        name = key.decode("utf-8", "replace")
        if len(values) != 1:
            raise ApiError(400, "invalid_request", f"Parameter {name!r} is given more than once.", name)
        out[name] = values[0].decode("utf-8", "replace")
    return out


def page(params: dict[str, str], allowed: set[str]) -> tuple[int, int]:
    """(cursor position, limit) from the query; unknown parameters are refused."""
    known(params, allowed)
    cursor = params.get("cursor", "") or "0"
    if not _digits(cursor) or len(cursor) > 18:
        raise ApiError(400, "invalid_request", "cursor must be a value from next_cursor.", "cursor")
    return int(cursor), page_limit(params)


def known(params: dict[str, str], allowed: set[str]) -> None:
    """Refuse the first parameter not in ``allowed`` (a misspelt filter must not list everything)."""
    for name in params:
        if name not in allowed:
            raise ApiError(400, "invalid_request", f"Unknown parameter {name!r}.", name)


def page_limit(params: dict[str, str]) -> int:
    """``limit``: 1 to ``MAX_PAGE``, ``DEFAULT_PAGE`` when absent."""
    limit = params.get("limit", str(DEFAULT_PAGE))
    # the length first: int() refuses strings of over 4,300 digits with a ValueError of its own
    if not _digits(limit) or len(limit) > 18 or not 1 <= int(limit) <= MAX_PAGE:
        raise ApiError(400, "invalid_request", f"limit must be an integer from 1 to {MAX_PAGE}.", "limit")
    return int(limit)


def id_cursor(params: dict[str, str], name: str = "cursor") -> str | None:
    """A cursor that is the last id of the page before (admin look-ups page newest first by id):
    None when absent, 400 unless it looks like an id (1 to 64 lowercase hex digits)."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if not (value.isascii() and 1 <= len(value) <= 64 and all(c in "0123456789abcdef" for c in value)):
        raise ApiError(400, "invalid_request", f"{name} must be a value from next_cursor.", name)
    return value


def _digits(value: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes "²", which ``int`` then refuses."""
    return value.isascii() and value.isdigit()


def time_param(params: dict[str, str], name: str, default: float) -> float:
    """An RFC 3339 date-time or a date (midnight UTC) as epoch seconds; ``default`` when absent."""
    from smscore.submission import parse_rfc3339

    value = params.get(name)
    if value is None:
        return default
    try:
        if len(value) == 10:  # a date: midnight UTC
            value += "T00:00:00Z"
        return parse_rfc3339(value)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name} must be an RFC 3339 date-time or a date.", name) from None
