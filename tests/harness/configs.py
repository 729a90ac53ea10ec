"""Config files the process tests share."""

from __future__ import annotations

#: A node of a pair on one store and one SMSC (a standalone ``smsgw smsc-sim`` with system_id
#: "pair", password "pw"): fill in node, lease, url, http, metrics, smpp, binds, window, tps.
PAIR_CONFIG = """
[gateway]
node = "{node}"
lease = "{lease}"
[store]
url = "{url}"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[operators.smsc]
type = "smpp"
host = "127.0.0.1"
port = {smpp}
system_id = "pair"
password = "pw"
binds = {binds}
window = {window}
tps = {tps}
cost = 0.1
[profiles.standard]
operators = ["smsc"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""
