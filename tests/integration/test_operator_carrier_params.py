"""An SMPP operator's carrier parameters (SPEC §15) on the wire: the operator is read from TOML,
turned into its link as the gateway does (``smscore.app.link_settings``), and bound over loopback
to the simulated SMSC, which records what it received. Real sockets, port 0, the real reactor;
waits are on conditions, never fixed sleeps.

TLS: the simulated SMSC speaks plain TCP, so its factory is served behind a Twisted SSL listener
that requires a client certificate signed by the gateway's CA; the SMSC's own certificate is
signed by another CA, the one ``tls_ca`` names."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
import pytest_twisted
from structlog.testing import capture_logs
from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.ssl import Certificate, PrivateCertificate
from twisted.logger import globalLogPublisher
from zope.interface import implementer

from connectors.api import SubmitRequest
from connectors.sim.smsc import Binding
from connectors.smpp.client import OperatorLink
from connectors.smpp.times import format_absolute
from connectors.smsc_sim import SimSettings, SimulatedSMSC
from smscore.app import link_settings
from smscore.config import parse_config
from tests.certs import TestCA
from tests.harness.waiting import eventually

SIM = SimSettings(system_id="gw", password="secret", receipt_delay=60.0)
CREDENTIALS = 'system_id = "gw"\npassword = "secret"\n'
PROFILE = '\n[profiles.standard]\noperators = ["carrier"]\n'
HOUR = 3600.0
STOP_WITHIN = 10.0  # a stop that hangs is given up after this, not left to hold the run up


class Listener:
    """The core's side of the link, reduced to what these tests look at: which sessions are up."""

    def __init__(self) -> None:
        self.up: list[str] = []

    def link_ready(self, operator) -> None:
        pass

    def bind_changed(self, operator, session, up) -> None:
        if up:
            self.up.append(session)

    def pdu_counts(self, operator):
        return Counter()


@implementer(IStreamClientEndpoint)
class Recorded:
    """A real endpoint that notes, in ``attempts``, each time the link connects through it."""

    def __init__(self, endpoint, description: str, attempts: list[str]) -> None:
        self.endpoint, self.description, self.attempts = endpoint, description, attempts

    def connect(self, factory):
        self.attempts.append(self.description)
        return self.endpoint.connect(factory)


@pytest.fixture
def stops():
    """What a test started (links, SMSCs, listeners), stopped after it whatever happened."""
    started: list = []
    yield started
    for stop in reversed(started):
        pytest_twisted.blockon(stop().addTimeout(STOP_WITHIN, reactor))


async def plain_sim(stops) -> tuple[SimulatedSMSC, int]:
    sim = SimulatedSMSC(SIM, reactor, name="carrier")
    port = await sim.listen("127.0.0.1", 0)
    stops.append(sim.stop)
    return sim, port


def start_link(operator: str, folder, stops, **link) -> tuple[OperatorLink, Listener]:
    """The link of ``[operators.carrier]`` (``operator`` is its body), as the gateway builds it,
    reconnecting within 50 ms so a refused address costs the test little."""
    config = parse_config("[operators.carrier]\n" + operator + PROFILE, path=folder / "gateway.toml")
    op = config.operators["carrier"]
    settings = replace(link_settings(op, op.host, op.port), reconnect_min=0.05, reconnect_max=0.2)
    listener = Listener()
    created = OperatorLink("carrier", settings, listener, reactor, jitter=lambda: 0.0, **link)
    created.start()
    stops.append(created.stop)
    return created, listener


def failures(link: OperatorLink) -> int:
    return link.describe()["sessions"][0]["reconnect_failures"]


# --- the SMPP fields ----------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_the_smsc_gets_the_configured_address_range_service_type_ton_npi_and_validity(tmp_path, stops):
    sim, port = await plain_sim(stops)
    link, _ = start_link(f'host = "127.0.0.1"\nport = {port}\n' + CREDENTIALS
                         + 'system_type = "VMA"\naddress_range = "^4670"\nservice_type = "CMT"\n'
                         'source_ton = 2\nsource_npi = 9\ndest_ton = 0\ndest_npi = 4\nvalidity = "48h"\n',
                         tmp_path, stops)
    await eventually(link.is_up, "the carrier link bound")
    assert sim.binds == [Binding("gw", "bind_transceiver", "VMA", "^4670")]

    soon = reactor.seconds() + HOUR
    await link.submit(SubmitRequest("m1", "+46701234567", "ACME", "no expiry of its own", "gsm7"))
    await link.submit(SubmitRequest("m2", "+46701234567", "4670111111", "expires in an hour", "gsm7",
                                    expires_at=soon))
    await link.submit(SubmitRequest("m3", "+46701234567", "72550", "expires in three days", "gsm7",
                                    expires_at=reactor.seconds() + 72 * HOUR))
    fields = [(r.service_type, r.source_addr_ton, r.source_addr_npi, r.source_addr, r.dest_addr_ton,
               r.dest_addr_npi, r.destination_addr, r.validity_period) for r in sim.submits]
    assert fields == [
        ("CMT", 2, 9, "ACME", 0, 4, "46701234567", "000002000000000R"),  # the operator's 48 h
        ("CMT", 2, 9, "4670111111", 0, 4, "46701234567", format_absolute(soon)),  # its own is earlier
        ("CMT", 2, 9, "72550", 0, 4, "46701234567", "000002000000000R"),  # the operator's is earlier
    ]


@pytest_twisted.ensureDeferred
async def test_without_them_the_smsc_gets_what_it_got_before(tmp_path, stops):
    sim, port = await plain_sim(stops)
    link, _ = start_link(f'host = "127.0.0.1"\nport = {port}\n' + CREDENTIALS, tmp_path, stops)
    await eventually(link.is_up, "the carrier link bound")
    await link.submit(SubmitRequest("m1", "+46701234567", "ACME", "hello", "gsm7"))
    await link.submit(SubmitRequest("m2", "+46701234567", "72550", "hello", "gsm7"))
    assert sim.binds == [Binding("gw", "bind_transceiver", "", "")]
    assert [(r.service_type, r.source_addr_ton, r.source_addr_npi, r.dest_addr_ton, r.dest_addr_npi,
             r.validity_period) for r in sim.submits] == [("", 5, 0, 1, 1, ""), ("", 3, 0, 1, 1, "")]


# --- alternate addresses ------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_an_unreachable_first_host_is_skipped_for_the_next(tmp_path, stops):
    sim, port = await plain_sim(stops)
    nobody = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    closed = nobody.getHost().port
    await nobody.stopListening()
    attempts: list[str] = []

    def endpoint_factory(reactor_, description):
        return Recorded(clientFromString(reactor_, description), description, attempts)

    link, listener = start_link(f'hosts = ["127.0.0.1:{closed}", "127.0.0.1:{port}"]\n' + CREDENTIALS,
                                tmp_path, stops, endpoint_factory=endpoint_factory)
    await eventually(link.is_up, "the link bound at the second address")
    assert attempts == [f"tcp:host=127.0.0.1:port={closed}", f"tcp:host=127.0.0.1:port={port}"]
    assert listener.up == ["carrier/1"] and [b.system_id for b in sim.binds] == ["gw"]
    await link.submit(SubmitRequest("m1", "+46701234567", "ACME", "via the alternate", "gsm7"))
    assert len(sim.submits) == 1


# --- TLS with a client certificate --------------------------------------------------------------
@pytest.fixture
def pki(tmp_path):
    """The SMSC's CA and certificate for 127.0.0.1; the gateway's CA and client certificate."""
    smsc_ca, gateway_ca = TestCA(tmp_path, "smsc-ca"), TestCA(tmp_path, "gateway-ca")
    return {"smsc_ca": smsc_ca.path, "smsc": smsc_ca.issue("smsc", ip="127.0.0.1"),
            "gateway_ca": gateway_ca.path, "gateway": gateway_ca.issue("gateway"),
            "stranger_ca": TestCA(tmp_path, "stranger-ca").path}


async def tls_sim(pki, stops) -> tuple[SimulatedSMSC, int]:
    """The simulated SMSC behind TLS that requires a client certificate from the gateway's CA."""
    sim = SimulatedSMSC(SIM, reactor, name="carrier")
    stops.append(sim.stop)
    cert, key = pki["smsc"]
    server = PrivateCertificate.loadPEM(cert.read_bytes() + key.read_bytes())
    options = server.options(Certificate.loadPEM(pki["gateway_ca"].read_bytes()))
    port = reactor.listenSSL(0, sim.factory, options, interface="127.0.0.1")
    stops.append(port.stopListening)
    return sim, port.getHost().port


@pytest_twisted.ensureDeferred
async def test_tls_checks_the_smsc_against_tls_ca_and_shows_the_client_certificate(tmp_path, pki, stops):
    sim, port = await tls_sim(pki, stops)
    cert, key = pki["gateway"]
    link, _ = start_link(f'host = "127.0.0.1"\nport = {port}\n' + CREDENTIALS
                         + f'tls = true\ntls_ca = "{pki["smsc_ca"]}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n',
                         tmp_path, stops)
    await eventually(link.is_up, "the TLS link bound")
    await link.submit(SubmitRequest("m1", "+46701234567", "ACME", "over TLS", "gsm7"))
    assert [b.system_id for b in sim.binds] == ["gw"] and len(sim.submits) == 1


def failed_attempts(logs: list[dict]) -> list[dict]:
    """The carrier session's log lines at warning or above."""
    return [e for e in logs if e.get("session") == "carrier/1" and e["log_level"] in ("warning", "error")]


@pytest.mark.parametrize("files, host, error", [
    ("no client certificate", "127.0.0.1", "alert"),  # the SMSC's: "tlsv13 alert certificate required"
    ("an SMSC from another CA", "127.0.0.1", "certificate verify failed"),
    ("a certificate for another host", "localhost", "certificate verify failed: the certificate does not "
                                                    "name the host connected to"),
], ids=["no client certificate", "an SMSC from another CA", "a certificate for another host"])
@pytest_twisted.ensureDeferred
async def test_tls_without_the_right_certificates_never_binds_and_says_why(tmp_path, pki, stops, files, host, error):
    sim, port = await tls_sim(pki, stops)
    cert, key = pki["gateway"]
    client = f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
    tls = {"no client certificate": f'tls_ca = "{pki["smsc_ca"]}"\n',
           "an SMSC from another CA": f'tls_ca = "{pki["stranger_ca"]}"\n' + client,
           "a certificate for another host": f'tls_ca = "{pki["smsc_ca"]}"\n' + client}[files]
    with capture_logs() as logs:
        link, _ = start_link(f'host = "{host}"\nport = {port}\n' + CREDENTIALS + "tls = true\n" + tls,
                             tmp_path, stops)
        await eventually(lambda: failures(link) >= 3, "three failed TLS connections",
                         state=lambda: link.describe())
    assert not link.is_up() and sim.binds == []
    lines = failed_attempts(logs)[:3]
    assert [(e["event"], e["operator"], e["address"], e["failures"], e["retry_in"]) for e in lines] == [
        ("TLS handshake failed", "carrier", f"{host}:{port}", n, delay) for n, delay in ((1, 0.05), (2, 0.1), (3, 0.2))]
    assert all(error in e["error"] for e in lines), lines
    last = link.describe()["sessions"][0]["last_error"]["reason"]
    assert last == f"connect failed: TLS handshake failed: {lines[0]['error']}"  # GET /v1/admin/binds


@pytest_twisted.ensureDeferred
async def test_a_host_down_is_one_line_per_attempt_naming_it_the_error_and_the_next_delay(tmp_path, stops):
    nobody = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    closed = nobody.getHost().port
    await nobody.stopListening()
    twisted_said: list[dict] = []
    globalLogPublisher.addObserver(twisted_said.append)
    try:
        with capture_logs() as logs:
            link, _ = start_link(f'host = "127.0.0.1"\nport = {closed}\n' + CREDENTIALS, tmp_path, stops)
            await eventually(lambda: failures(link) >= 3, "three refused connections")
    finally:
        globalLogPublisher.removeObserver(twisted_said.append)
    lines = failed_attempts(logs)[:3]
    assert [(e["event"], e["address"], e["failures"], e["retry_in"]) for e in lines] == [
        ("connect failed", f"127.0.0.1:{closed}", n, delay) for n, delay in ((1, 0.05), (2, 0.1), (3, 0.2))]
    assert all("Connection refused" in e["error"] for e in lines), lines
    assert [e for e in twisted_said if "Scheduling retry" in e.get("log_format", "")] == []
