"""docs/api.md's signature verification snippets, run as a customer would run them (Python, Node.js,
a shell with openssl), against pushes signed by the gateway's own code (``connectors.http_push``):
each must accept the push as signed, and refuse a tampered body, another secret, a signature made
for another timestamp and a timestamp older than its window. The snippets are taken from the page
itself (the fenced block after each ``<!-- snippet: NAME -->``), so the page cannot drift from
what was tested; so is its example of a signed push.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from connectors.http_push import Pusher, encode_body
from smscore.mo import mo_push_body
from smscore.model import Event, Message, MoMessage, Status
from smscore.store.sql import status_callback_body

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SECRET = "s3cret-öf-acme"


def snippet(name: str) -> str:
    match = re.search(rf"<!-- snippet: {name} -->\s*```[a-z]*\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"docs/api.md has no snippet {name}"
    return match.group(1)


def _bodies() -> list[bytes]:
    """A status callback and an MO push (non-ASCII text: the signature is over UTF-8 bytes), as the
    gateway encodes them."""
    m = Message(id="01a242211dfa00004f6e8143", account="acme", to="46701234567", sender="ACME", text="hi",
                encoding="gsm7", parts=1, profile="standard", reference="order-17")
    e = Event(at=1796405796.404, status=Status.DELIVERED, operator="sim_a", detail="stat=DELIVRD", final=True)
    mo = MoMessage(id="01a2422140de0000a45ac9ce", operator="sim_a", sender="46701234567", to="72550",
                   text="PIZZA grüße 😀", received_at=1796405796.0, keyword="PIZZA", payload="grüße 😀")
    return [encode_body(status_callback_body(1207, m, e)), encode_body(mo_push_body(mo))]


def _signed(body: bytes, secret: str = SECRET, at: float | None = None) -> tuple[str, str]:
    """(timestamp, signature) as a push made at ``at`` (default now) carries them."""
    timestamp = str(int(time.time() if at is None else at))
    headers = Pusher(Clock()).headers(timestamp, body, secret)
    return headers["X-Smsgw-Timestamp"], headers["X-Smsgw-Signature"]


def _cases():
    """(what, timestamp, signature, body, accepted?)."""
    out = []
    for body in _bodies():
        ts, sig = _signed(body)
        old_ts, old_sig = _signed(body, at=time.time() - 600)
        out += [
            ("signed", ts, sig, body, True),
            ("tampered body", ts, sig, body.replace(b"46701234567", b"46701234568"), False),
            ("one byte added", ts, sig, body + b" ", False),
            ("another secret", *_signed(body, secret="not-the-secret"), body, False),
            ("another timestamp", str(int(ts) - 1), sig, body, False),
            ("ten minutes old", old_ts, old_sig, body, False),
            ("a timestamp that is not a number", "1²", sig, body, False),
            ("no timestamp", "", sig, body, False),
        ]
    return out


def test_python_snippet():
    namespace: dict = {}
    exec(compile(snippet("verify-python"), "docs/api.md:verify-python", "exec"), namespace)
    verify = namespace["verify_smsgw"]
    for what, ts, sig, body, accepted in _cases():
        assert verify(SECRET, ts, sig, body) is accepted, what


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js (node) is not installed")
def test_node_snippet(tmp_path):
    script = tmp_path / "verify.js"
    script.write_text(snippet("verify-node") + """
const fs = require("fs");
const [secret, timestamp, signature, bodyFile] = process.argv.slice(2);
process.exit(verifySmsgw(secret, timestamp, signature, fs.readFileSync(bodyFile)) ? 0 : 1);
""")
    for i, (what, ts, sig, body, accepted) in enumerate(_cases()):
        body_file = tmp_path / f"body{i}.json"
        body_file.write_bytes(body)
        run = subprocess.run(["node", str(script), SECRET, ts, sig, str(body_file)], capture_output=True,
                             text=True, timeout=30)
        assert run.returncode == (0 if accepted else 1), (what, run.stderr)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_shell_snippet(tmp_path):
    for what, ts, sig, body, accepted in _cases():
        (tmp_path / "body.json").write_bytes(body)
        run = subprocess.run(["sh", "-c", snippet("verify-shell")], cwd=tmp_path, capture_output=True, text=True,
                             timeout=30, env={"PATH": "/usr/bin:/bin", "SECRET": SECRET, "TIMESTAMP": ts,
                                              "SIGNATURE": sig})
        assert run.returncode == (0 if accepted else 1), (what, run.stdout, run.stderr)
        assert ("valid" in run.stdout) is accepted, what


def test_the_example_push_on_the_page_is_signed_as_the_gateway_signs():
    match = re.search(r"<!-- example: signed-push secret=(\S+) -->\s*```\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/api.md has no example of a signed push"
    secret, text = match.groups()
    head, body = text.split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    body = body.rstrip("\n").encode("utf-8")
    expected = Pusher(Clock()).headers(headers["X-Smsgw-Timestamp"], body, secret)["X-Smsgw-Signature"]
    assert headers["X-Smsgw-Signature"] == expected
