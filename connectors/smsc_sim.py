"""A simulated SMSC, so the gateway runs, is demonstrated and is tested without a real operator.

Why a façade: the gateway (``smscore.app``), the CLI (``smsgw smsc-sim``) and the tests import these
names from here; the implementation lives in ``connectors/sim/`` (settings, receipts, MO building,
the SMPP server, the HTTP control API) and may change shape behind it.

Misbehaving SMSCs (jasmin's catalogue) are added as subclasses of ``SimulatedSMSC`` that override
one hook each (``bind_status``, ``submit_status``, ``new_message_id``, ``outcome_for``,
``receipt_delay_for``, ``receipt_for``), leaving the core alone.
"""

from connectors.sim.control import control_site
from connectors.sim.mo import InvalidMO
from connectors.sim.receipts import DELIVERED, UNDELIVERABLE, Outcome
from connectors.sim.settings import SimSettings
from connectors.sim.smsc import SimulatedSMSC, SubmitRecord

__all__ = [
    "DELIVERED",
    "InvalidMO",
    "Outcome",
    "SimSettings",
    "SimulatedSMSC",
    "SubmitRecord",
    "UNDELIVERABLE",
    "control_site",
]
