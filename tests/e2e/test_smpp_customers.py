"""A customer's ESME against `smsgw run` as a user runs it (SPEC §13), with smpplib: submits over
SMPP on a node of several processes, then 1,000 receipts waiting for a receiver survive a
SIGKILL of the gateway and all arrive once a receiver binds after the restart; a cancel_sm
served by the API worker that holds the ESMEs keeps a message waiting in the main worker's queue
from being sent."""

from __future__ import annotations

import sqlite3

import pytest
import smpplib.client

from tests.e2e.conftest import SIM_CONFIG
from tests.harness.net import free_port
from tests.harness.waiting import wait_until
from tests.esme import Esme, cancel_over

pytestmark = pytest.mark.slow

COUNT = 1000

CONFIG = SIM_CONFIG.replace("[gateway]\n", "[gateway]\nprocesses = 2\n", 1) + """
[smpp_server]
listen = "127.0.0.1:{smpp}"
[accounts.demo.smpp]
system_id = "demo"
password = "pw"
max_binds = 2
"""


def submit_many(port: int, count: int) -> list[str]:
    esme = Esme(port, timeout=30)
    esme.client.connect()
    try:
        esme.client.bind_transmitter(system_id="demo", password="pw")
        return [esme.submit(f"46701{i:06d}", b"receipt later", source="DEMO") for i in range(count)]
    finally:
        esme.client.unbind()
        esme.client.disconnect()


def receive(port: int, count: int) -> list:
    esme = Esme(port, timeout=30)
    esme.client.connect()
    try:
        esme.client.bind_receiver(system_id="demo", password="pw")
        while len(esme.delivered) < count:
            esme.client.read_once(auto_send_enquire_link=False)
        return esme.delivered
    finally:
        esme.client.disconnect()


def counts(db) -> tuple[int, int]:
    """(delivered messages, receipts waiting for an ESME)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        delivered = conn.execute("SELECT COUNT(*) FROM messages WHERE status = 'delivered'").fetchone()[0]
        waiting = conn.execute("SELECT COUNT(*) FROM push_jobs WHERE url = 'smpp'").fetchone()[0]
        return delivered, waiting
    finally:
        conn.close()


def test_receipts_for_an_unbound_esme_survive_a_sigkill_and_arrive_after_the_restart(gateways, tmp_path):
    ports = {"http": free_port(), "metrics": free_port(), "smpp": free_port()}
    gw = gateways(CONFIG.format(**ports), ports["http"]).start()
    ids = submit_many(ports["smpp"], COUNT)
    assert len(set(ids)) == COUNT
    db = tmp_path / "e2e.db"
    wait_until(lambda: counts(db) == (COUNT, COUNT), 60, what=f"{COUNT} delivered, their receipts waiting")
    gw.kill()
    gw.start()
    got = receive(ports["smpp"], COUNT)
    receipted = [pdu.receipted_message_id.decode() for pdu in got]
    assert set(receipted) == set(ids)
    assert all(b"stat:DELIVRD" in pdu.short_message for pdu in got)
    wait_until(lambda: counts(db)[1] == 0, 30, what="every receipt acknowledged")


def test_a_bind_with_a_wrong_password_is_refused_by_the_running_gateway(gateways):
    ports = {"http": free_port(), "metrics": free_port(), "smpp": free_port()}
    gateways(CONFIG.format(**ports), ports["http"]).start()
    client = smpplib.client.Client("127.0.0.1", ports["smpp"], timeout=10)
    client.connect()
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as refused:
            client.bind_transceiver(system_id="demo", password="nope")
        assert refused.value.args[1] == 0x0D  # ESME_RBINDFAIL
    finally:
        client.disconnect()


def udp_ports_of(pid: int) -> list[int]:
    """The loopback UDP ports of the sockets process ``pid`` holds (the supervisor holds every
    worker's kick socket)."""
    import os
    from pathlib import Path

    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = []
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[9] in inodes and cols[1].startswith("0100007F:"):
            ports.append(int(cols[1].split(":")[1], 16))
    return ports


def metric(port: int, name: str, **labels) -> float:
    """The sum of ``name``'s samples with these labels on the node's /metrics."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_a_cancel_sm_keeps_a_message_waiting_in_the_main_workers_queue_from_going(gateways, tmp_path):
    """The ESMEs are served by an API worker, the operator binds by the main worker. With the
    operator at one submit a second, the fourth message waits in the main worker's queue; a
    cancel_sm for it, taken by the API worker, is done by the main worker (its internal cancel),
    which drops it from that queue."""
    ports = {"http": free_port(), "metrics": free_port(), "smpp": free_port()}
    config = CONFIG.format(**ports).replace('[operators.sim_a]\ntype = "simulated"\n',
                                            '[operators.sim_a]\ntype = "simulated"\ntps = 1\n', 1)
    config = config.replace('operators = ["sim_a", "sim_b"]', 'operators = ["sim_a"]', 1)
    gw = gateways(config, ports["http"]).start()
    esme = Esme(ports["smpp"], timeout=30)
    esme.client.connect()
    try:
        esme.client.bind_transceiver(system_id="demo", password="pw")
        ids = [esme.submit(f"4670100000{i}", b"one a second", source="DEMO") for i in range(4)]
        answer = cancel_over(esme.client, ids[3], 9000)
    finally:
        esme.client.disconnect()
    assert (answer.command, answer.status) == ("cancel_sm_resp", 0)
    # A stray datagram naming a message still to be sent (here the third, waiting behind the first
    # two) on the workers' kick ports changes nothing: kicks carry no ids.
    import socket

    stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    kick_ports = udp_ports_of(gw.proc.pid)
    assert len(kick_ports) == 2  # one per worker
    for port in kick_ports:
        stray.sendto(f"forget {ids[2]}".encode(), ("127.0.0.1", port))
    stray.close()
    db = tmp_path / "e2e.db"

    def statuses():
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return dict(conn.execute("SELECT id, status FROM messages").fetchall())
        finally:
            conn.close()

    wait_until(lambda: [statuses().get(i) for i in ids[:3]] == ["delivered"] * 3, 30, what="three delivered")
    # Nothing left in the main worker's queue, and only three submits ever went to the operator.
    wait_until(lambda: metric(ports["metrics"], "smsgw_queue_depth", operator="sim_a") == 0, 10,
             what="the main worker's queue empty")
    assert metric(ports["metrics"], "smsgw_pdus_total", command="submit_sm", direction="out") == 3
    assert statuses()[ids[3]] == "stopped"


def test_esmes_bind_over_tls_to_the_worker_that_serves_them(gateways, tmp_path):
    """[smpp_server] tls_listen on a node of several processes: the supervisor opens the listener,
    the first API worker serves it with the configured certificate; a connection made as soon as
    the node answers /healthz waits for that worker instead of being refused."""
    import ssl

    from tests.certs import TestCA

    ca = TestCA(tmp_path)
    cert, key = ca.issue("gateway", ip="127.0.0.1")
    ports = {"http": free_port(), "metrics": free_port(), "smpp": free_port()}
    tls_port = free_port()
    config = CONFIG.format(**ports).replace(
        "[smpp_server]\n", f'[smpp_server]\ntls_listen = "127.0.0.1:{tls_port}"\ntls_cert = "{cert}"\n'
        f'tls_key = "{key}"\n', 1)
    gateways(config, ports["http"]).start()
    context = ssl.create_default_context(cafile=str(ca.path))
    context.check_hostname = False  # smpplib gives no server name: the chain is checked
    esme = Esme(tls_port, ssl_context=context, timeout=30)
    esme.client.connect()
    try:
        esme.client.bind_transceiver(system_id="demo", password="pw")
        message_id = esme.submit("46701000009", b"over TLS", source="DEMO")
        receipt = esme.wait_for("deliver")
    finally:
        esme.client.disconnect()
    assert receipt.receipted_message_id.decode() == message_id and b"stat:DELIVRD" in receipt.short_message
