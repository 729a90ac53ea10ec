"""The web console's files and how the API listener serves them (SPEC §14: ``GET /console/``).

The console is a few static files, written by hand and shipped inside the package: HTML, one CSS
file and small JavaScript modules. There is no build step and nothing is fetched from the internet;
the browser signs in with an API key and then calls the same JSON API a customer or an operator
would (``/v1/...`` with a customer key, ``/v1/admin/...`` with an admin key). What a key may see is
decided by the server for every call, never by the page: a customer's key cannot read another
account's data whatever the page does.

Files are read once, when this module is imported, into memory: the set of paths is fixed, so a
request can name only one of them (no path is ever joined onto the file system). Answers carry a
strict Content-Security-Policy (only this origin's scripts, styles and API; no inline script), an
ETag, and ``Cache-Control: no-cache`` so an upgraded gateway's console is fetched again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from smscore.errors import ApiError

_ASSETS = Path(__file__).with_name("assets")
_TYPES = {".html": b"text/html; charset=utf-8", ".js": b"text/javascript; charset=utf-8",
          ".css": b"text/css; charset=utf-8", ".svg": b"image/svg+xml"}

#: what every console answer says about itself: a page that runs only its own code
SECURITY_HEADERS = (
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
)


class _Asset:
    __slots__ = ("body", "content_type", "etag")

    def __init__(self, body: bytes, content_type: bytes) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'


def _load() -> dict[str, _Asset]:
    files = {}
    for path in sorted(_ASSETS.iterdir()):
        if path.is_file() and path.suffix in _TYPES:
            files[f"/console/{path.name}"] = _Asset(path.read_bytes(), _TYPES[path.suffix])
    files["/console/"] = files["/console/index.html"]
    return files


FILES = _load()


def is_console(path: str) -> bool:
    """Whether ``path`` is the console's (or ``/``, which leads there)."""
    return path == "/" or path == "/console" or path.startswith("/console/")


def answer(request, method: str, path: str) -> bytes:
    """The console file at ``path`` (with its headers set on ``request``); ``/`` and ``/console``
    redirect to ``/console/``; 404 for any other path, 405 for a method other than GET or HEAD."""
    if method not in ("GET", "HEAD"):
        raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.",
                       headers={"Allow": "GET, HEAD"})
    if path in ("/", "/console"):
        request.setResponseCode(302)
        request.setHeader(b"location", b"/console/")
        return b""
    asset = FILES.get(path)
    if asset is None:
        raise ApiError(404, "not_found", "No such resource.")
    for name, value in SECURITY_HEADERS:
        request.setHeader(name, value)
    request.setHeader(b"etag", asset.etag)
    if request.getHeader(b"if-none-match") == asset.etag:
        request.setResponseCode(304)
        return b""
    request.setResponseCode(200)
    request.setHeader(b"content-type", asset.content_type)
    return asset.body  # the server leaves the body out of a HEAD answer
