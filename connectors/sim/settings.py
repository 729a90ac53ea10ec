"""The behaviour knobs of the simulated SMSC, parsed once into one frozen object.

Why a module of its own: the CLI (``smsgw smsc-sim``), the gateway's in-process operators and the
tests all build a ``SimSettings``; none of them should need the reactor-bound SMSC to do it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MESSAGE_ID_FORMATS", "SimSettings"]

MESSAGE_ID_FORMATS = ("hex", "dec")


@dataclass(frozen=True)
class SimSettings:
    """How a simulated SMSC behaves; one scenario per knob.

    Why frozen and checked here: a wrong value (a negative delay, an unknown id format) is a
    configuration error, reported when the settings are built, not at the first submit.

    * ``system_id`` / ``password``: checked on every bind; None accepts anything.
    * ``receipt_delay``: seconds from the submit_sm_resp to the deliver_sm receipt.
    * ``message_id_format``: ``"hex"`` (lowercase) or ``"dec"``: how the SMSC's message ids look.
    * ``unreachable_prefixes``: destinations starting with one of these are accepted, then get an
      UNDELIV receipt (a ported or dead number).
    * ``throttle_tps``: more than this many accepted submits within one second are answered
      ESME_RTHROTTLED; 0 never throttles.
    """

    system_id: str | None = None
    password: str | None = None
    receipt_delay: float = 0.2
    message_id_format: str = "hex"
    unreachable_prefixes: tuple[str, ...] = ()
    throttle_tps: int = 0

    def __post_init__(self) -> None:
        if self.message_id_format not in MESSAGE_ID_FORMATS:
            raise ValueError(f"message_id_format must be one of {', '.join(MESSAGE_ID_FORMATS)},"
                             f" not {self.message_id_format!r}")
        if self.receipt_delay < 0:
            raise ValueError(f"receipt_delay must be >= 0, not {self.receipt_delay!r}")
        if self.throttle_tps < 0:
            raise ValueError(f"throttle_tps must be >= 0, not {self.throttle_tps!r}")
        # what a bind may carry in SMPP 3.4 (C-octet strings of 16 and 9 octets), as the config holds it
        for name, most in (("system_id", 15), ("password", 8)):
            value = getattr(self, name)
            if value is not None and len(value) > most:
                raise ValueError(f"{name} must be at most {most} characters (SMPP 3.4), got {len(value)}")
        # A list from a config file is accepted, stored as a tuple so the object stays hashable.
        object.__setattr__(self, "unreachable_prefixes", tuple(self.unreachable_prefixes))
        for prefix in self.unreachable_prefixes:
            if not (isinstance(prefix, str) and prefix.isdigit() and prefix.isascii()):
                raise ValueError(f"unreachable_prefix must be digits, not {prefix!r}")
