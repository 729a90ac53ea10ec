"""The simulated SMSC without sockets, for its tests: our ESME-side ``SMPPProtocol`` wired to the
SMSC through ``twisted.test.iosim`` and driven by a ``Clock`` (the clock starts at 2023-11-14
22:13:20 UTC so receipt dates are real dates)."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.test.iosim import connectedServerAndClient

from connectors.smpp.codec import PDU
from connectors.smpp.defs import ESME_ROK
from connectors.smpp.protocol import RequestFailed, SMPPProtocol
from connectors.smpp.session import ESME
from connectors.smsc_sim import SimSettings, SimulatedSMSC

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
SETTINGS = SimSettings(system_id="gw", password="secret", receipt_delay=60.0)
FIRST_ID = 0x1A2B3C


class Esme:
    """The ESME side's handler: records what the SMSC sends and answers deliver_sm with
    ``status`` (None: never answers)."""

    def __init__(self, status: int | None = ESME_ROK) -> None:
        self.status = status
        self.received: list[PDU] = []
        self.errors: list = []
        self.closed: list[str] = []
        self.unbound = 0

    def peer_unbound(self, proto):
        self.unbound += 1

    def request_received(self, proto, pdu):
        self.received.append(pdu)
        if self.status is not None:
            proto.respond(pdu, self.status)

    def connection_closed(self, proto, reason):
        self.closed.append(reason)

    def protocol_error(self, proto, event):
        self.errors.append(event)

    @property
    def receipts(self) -> list[PDU]:
        return [p for p in self.received if p.command == "deliver_sm" and p.params["esm_class"] & 4]


def result(d):
    """The result of a Deferred that must have fired (raising its failure)."""
    out = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def failure_status(d) -> int:
    with pytest.raises(RequestFailed) as info:
        result(d)
    return info.value.status


class Harness:
    def __init__(self, settings: SimSettings = SETTINGS, **kw) -> None:
        self.clock = Clock()
        self.clock.rightNow = T0
        self.sim = SimulatedSMSC(settings, self.clock, name="opsim", first_message_id=FIRST_ID,
                                 **kw)

    def connect(self, esme: Esme | None = None):
        esme = esme or Esme()
        client, server, pump = connectedServerAndClient(
            self.sim.build_protocol, lambda: SMPPProtocol(ESME, esme, self.clock),
            clock=self.clock)
        return Conn(client, server, pump, esme)

    def bound(self, command="bind_transceiver", system_id="gw", password="secret",
              esme: Esme | None = None):
        conn = self.connect(esme)
        resp = conn.call(command, {"system_id": system_id, "password": password})
        assert resp.params["system_id"] == "opsim"
        return conn

    def advance(self, seconds: float, *conns) -> None:
        self.clock.advance(seconds)
        for c in conns:
            c.pump.flush()


class Conn:
    def __init__(self, client, server, pump, esme) -> None:
        self.client, self.server, self.pump, self.esme = client, server, pump, esme

    def send(self, command, params=None, tlvs=None):
        d = self.client.request(command, params, tlvs)
        self.pump.flush()
        return d

    def call(self, command, params=None, tlvs=None):
        return result(self.send(command, params, tlvs))

    def submit(self, to="46701234567", text=b"Hello world", registered_delivery=1, **extra):
        params = {"source_addr_ton": 5, "source_addr_npi": 0, "source_addr": "Acme",
                  "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": to,
                  "registered_delivery": registered_delivery, "short_message": text}
        params.update(extra)
        return self.send("submit_sm", params)
