"""Which messages wait for an operator's approval (SPEC §3 ``approved_domains``,
``daily_volume_limit``; §5 ``pending_approval``): pure decisions.

Links are found in the text the way a phone would make them clickable: ``http(s)://host...`` and
bare ``www.host`` or ``host.tld/...`` forms. A link's host is approved when it is one of the
account's approved domains or a subdomain of one (``shop.acme.example`` under ``acme.example``).
An account with no approved domains sends no message with a link without approval.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_LINK = re.compile(
    r"(?:(?:https?://)(?P<host>[^\s/:?#]+)|(?<![\w@.-])(?P<bare>(?:www\.)?(?:[a-z0-9-]+\.)+[a-z]{2,63})(?=[/:?#\s]|$))",
    re.IGNORECASE)


def link_hosts(text: str) -> list[str]:
    """The hosts of the links in ``text``, lower case, in order."""
    hosts = []
    for m in _LINK.finditer(text):
        host = (m.group("host") or m.group("bare") or "").lower().rstrip(".")
        if host:
            hosts.append(host)
    return hosts


def host_approved(host: str, approved: Iterable[str]) -> bool:
    for domain in approved:
        d = domain.lower().lstrip(".")
        if host == d or host.endswith("." + d):
            return True
    return False


def unapproved_links(text: str, approved: Iterable[str]) -> list[str]:
    """Hosts linked from ``text`` that are not approved (empty: the text may go without approval)."""
    if "." not in text and "://" not in text:  # every link has one: most texts, and no scan nor call
        return []
    approved = tuple(approved)
    return [h for h in link_hosts(text) if not host_approved(h, approved)]


def over_daily_volume(sent_today: int, batch: int, limit: int | None) -> int:
    """How many of a batch of ``batch`` messages exceed the daily volume (0 when no limit)."""
    if limit is None:
        return 0
    return max(0, min(batch, sent_today + batch - limit))
