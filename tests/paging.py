"""Reading a paged list look-up to its end, as a client would (SPEC §14: ``next_cursor``)."""

from __future__ import annotations

from urllib.parse import quote


async def every_page(get, path: str, limit: int, items: str = "messages") -> tuple[list, int]:
    """Every item of the list at ``path``, page after page by ``next_cursor``: (items, pages).
    ``get(path)`` answers a page's body (and checks it was a 200)."""
    seen, cursor, pages = [], None, 0
    while True:
        sep = "&" if "?" in path else "?"
        body = await get(f"{path}{sep}limit={limit}" + (f"&cursor={quote(cursor)}" if cursor else ""))
        pages += 1
        seen.extend(body[items])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
