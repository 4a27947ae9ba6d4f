"""A key -> envelope ids index where a key may be shared by several envelopes.

Routing tags and receipt hashes travel in clear, so anyone can copy a real envelope's tag
or receipt hash into junk. An index that kept one id per key would let the junk displace
the real envelope (never delivered, never purged). This one keeps every id; the common
case of one id per key costs one dict entry holding the id itself, not a list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator


class MultiIndex:
    def __init__(self, max_per_key: int | None = None) -> None:
        self._map: dict[bytes, bytes | list[bytes]] = {}
        self._max = max_per_key

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, key: bytes) -> bool:
        return key in self._map

    def keys(self) -> Iterator[bytes]:
        return iter(self._map)

    def add(self, key: bytes, envelope_id: bytes) -> None:
        cur = self._map.get(key)
        if cur is None:
            self._map[key] = envelope_id
        elif isinstance(cur, bytes):
            if cur != envelope_id:
                self._map[key] = [cur, envelope_id]
        elif envelope_id not in cur and (self._max is None or len(cur) < self._max):
            cur.append(envelope_id)

    def get(self, key: bytes) -> list[bytes]:
        cur = self._map.get(key)
        if cur is None:
            return []
        return [cur] if isinstance(cur, bytes) else list(cur)

    def pop(self, key: bytes) -> list[bytes]:
        cur = self._map.pop(key, None)
        if cur is None:
            return []
        return [cur] if isinstance(cur, bytes) else cur

    def discard(self, key: bytes, envelope_id: bytes) -> None:
        cur = self._map.get(key)
        if cur is None:
            return
        if isinstance(cur, bytes):
            if cur == envelope_id:
                del self._map[key]
            return
        if envelope_id in cur:
            cur.remove(envelope_id)
        if len(cur) == 1:
            self._map[key] = cur[0]

    def retain(self, alive: Callable[[bytes], bool]) -> None:
        """Keep only the ids for which ``alive(id)`` is true."""
        out: dict[bytes, bytes | list[bytes]] = {}
        for key, cur in self._map.items():
            ids = [i for i in ([cur] if isinstance(cur, bytes) else cur) if alive(i)]
            if ids:
                out[key] = ids[0] if len(ids) == 1 else ids
        self._map = out
