"""The cluster in the SQL stores: which nodes are alive, and messages left for the node that holds
an operator's binds (SPEC §10). Mixed into ``SqlStore``.

The store only records: a node's heartbeat, its leaving, and the messages it parks. Who holds
which share of a limit is ``policies.cluster``'s decision, computed on every node from the list
``heartbeat`` returns.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred

from policies.cluster import Seen
from smscore.store.rows import in_lists, marks

#: A node not seen for this many lease lengths is forgotten (it is long dead; its name may come back).
FORGET_AFTER = 100


class NodeOperations:
    """Mixed into SqlStore (before Store in the bases)."""

    def heartbeat(self, node: str, now: float, ttl: float) -> Deferred:
        upsert = self.q("INSERT INTO nodes (node, seen_at, since) VALUES (?, ?, ?) "
                        "ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at, since = CASE "
                        "WHEN nodes.seen_at > ? AND nodes.since IS NOT NULL THEN nodes.since ELSE excluded.since END")
        forget = self.q("DELETE FROM nodes WHERE seen_at < ?")
        known = self.q("SELECT node, seen_at, since FROM nodes ORDER BY node")

        def op(cur):
            # one heartbeat at a time: of two nodes starting together, the second sees the first
            # (each would find itself alone, and take everything: policies.cluster.hold)
            self._lock(cur, "heartbeat")
            cur.execute(upsert, (node, now, now, now - ttl))
            cur.execute(forget, (now - FORGET_AFTER * ttl,))
            cur.execute(known)
            return [Seen(*row) for row in cur.fetchall()]

        return self.run(op)

    def leave(self, node: str, seen_at: float) -> Deferred:
        sql = self.q("UPDATE nodes SET seen_at = ? WHERE node = ?")

        def op(cur):
            cur.execute(sql, (seen_at, node))

        return self.run(op)

    def park(self, owner: str, parked: Sequence[tuple[str, str]]) -> Deferred:
        by_operator: dict[str, list[str]] = {}
        for message_id, operator in parked:
            by_operator.setdefault(operator, []).append(message_id)

        def op(cur):
            for operator, ids in sorted(by_operator.items()):  # one statement per operator and chunk
                for chunk in in_lists(sorted(ids)):
                    cur.execute(self.q("UPDATE messages SET owner = NULL, lease_until = NULL, via = ? WHERE owner = ? "
                                       f"AND status = 'queued' AND id IN ({marks(chunk)})"),
                                (operator, owner, *chunk))

        return self.run(op)
