"""How ``smscore.app.Gateway`` builds its parts from the config: the store ``[store] url`` names,
and the settings of an operator's link and of an in-process simulated operator. Pure reading of
the config (the store is opened, not started); kept apart so that tools and tests build the same
parts the gateway does.
"""

from __future__ import annotations

from connectors.smpp.client import LinkSettings
from connectors.smsc_sim import SimSettings
from smscore.config import Config, OperatorConfig
from smscore.store.base import Store, StoreRules


def open_store(config: Config, reactor, rules: StoreRules | None = None) -> Store:
    """The store named by ``[store] url`` (``rules``: what it needs to know from the node)."""
    url = config.store.url
    if config.store.sqlite_path is not None:
        from smscore.store.sqlite import SQLiteStore

        return SQLiteStore(config.store.sqlite_path, reactor, auto_upgrade=config.store.auto_upgrade, rules=rules)
    from smscore.store.postgres import PostgresStore

    return PostgresStore(url, reactor, auto_upgrade=config.store.auto_upgrade, rules=rules)


def sim_settings(op: OperatorConfig) -> SimSettings:
    return SimSettings(
        system_id=op.system_id or op.name, password=op.password or None, receipt_delay=op.receipt_delay,
        message_id_format=op.message_id_format, unreachable_prefixes=tuple(op.unreachable_prefixes),
        throttle_tps=op.throttle_tps)


def link_settings(op: OperatorConfig, host: str, port: int, share=None) -> LinkSettings:
    """``share``: this node's part of the operator's binds and tps (``policies.cluster``), else all.
    ``host``:``port`` is where the link connects first; the operator's other ``hosts`` follow."""
    binds, tps = (op.binds, op.tps) if share is None else (share.binds, share.tps)
    return LinkSettings(
        host=host, port=port, tls=op.tls, system_id=op.system_id or op.name, password=op.password,
        system_type=op.system_type, bind=op.bind, binds=binds, window=op.window, tps=tps,
        enquire_link=op.enquire_link, receipt_id_format=op.receipt_id_format, latin1=op.latin1,
        packed_gsm=op.packed_gsm, alternates=op.hosts[1:],
        tls_ca=op.tls_ca, tls_cert=op.tls_cert, tls_key=op.tls_key,
        address_range=op.address_range, service_type=op.service_type, source_ton=op.source_ton,
        source_npi=op.source_npi, dest_ton=op.dest_ton, dest_npi=op.dest_npi, validity=op.validity)
