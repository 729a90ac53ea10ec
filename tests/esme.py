"""smpplib, an SMPP implementation independent of ours, as a customer's ESME in tests.

smpplib is blocking: a test runs these in a thread (``deferToThread``) while the reactor serves
the gateway. ``Esme`` records what came back (responses, deliver_sm) by kind; ``cancel_over`` sends
the one request smpplib lacks (cancel_sm) as bytes of our codec over smpplib's bound socket.
"""

from __future__ import annotations

import smpplib.client
import smpplib.consts
import smpplib.exceptions

from connectors.smpp.codec import PDU, decode, encode


def smpplib_client(port: int, ssl_context=None, timeout: float = 5) -> smpplib.client.Client:
    return smpplib.client.Client("127.0.0.1", port, timeout=timeout, allow_unknown_opt_params=True,
                                 ssl_context=ssl_context)


def read_until(client, seen: dict, key: str) -> None:
    while key not in seen:
        client.read_once(auto_send_enquire_link=False)


def cancel_over(client, message_id: str, sequence: int) -> PDU:
    """cancel_sm, which smpplib lacks, as our codec's bytes over smpplib's socket."""
    client._socket.sendall(encode(PDU("cancel_sm", sequence, params={"message_id": message_id})))
    length = int.from_bytes(client._recv_exact(4), "big")
    return decode(length.to_bytes(4, "big") + client._recv_exact(length - 4))


def bind_status(port: int, system_id: str, password: str, as_: str = "transmitter") -> int:
    """Bind with smpplib and unbind: ESME_ROK (0), or the status the bind was refused with."""
    client = smpplib_client(port)
    client.connect()
    try:
        getattr(client, f"bind_{as_}")(system_id=system_id, password=password)
        return 0
    except smpplib.exceptions.PDUError as exc:
        return exc.args[1]
    finally:
        client.disconnect()


class Esme:
    """One smpplib client that keeps the last PDU of each kind it got: "resp" (submit_sm_resp),
    "deliver" (deliver_sm, each also appended to ``delivered``), "query" (query_sm_resp)."""

    def __init__(self, port: int, ssl_context=None, timeout: float = 5) -> None:
        self.client = smpplib_client(port, ssl_context, timeout)
        self.seen: dict = {}
        self.delivered: list = []
        self.client.set_message_sent_handler(self._keep("resp"))
        self.client.set_message_received_handler(self._deliver)
        self.client.set_query_resp_handler(self._keep("query"))

    def _keep(self, key):
        def handler(pdu, **_):
            self.seen[key] = pdu
        return handler

    def _deliver(self, pdu, **_):
        self.seen["deliver"] = pdu
        self.delivered.append(pdu)

    def wait_for(self, key: str) -> object:
        read_until(self.client, self.seen, key)
        return self.seen.pop(key)

    def submit(self, to: str, text: bytes, source: str = "Acme", registered_delivery: int = 1, **params) -> str:
        """submit_sm; the message id of its submit_sm_resp (an error raises smpplib's PDUError)."""
        self.client.send_message(source_addr_ton=smpplib.consts.SMPP_TON_ALNUM, source_addr_npi=0,
                                 source_addr=source, dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                                 dest_addr_npi=1, destination_addr=to, short_message=text,
                                 registered_delivery=registered_delivery, **params)
        return self.wait_for("resp").message_id.decode()
