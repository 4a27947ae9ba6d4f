"""Child process for the kill -9 durability test: writes batches forever and prints the
ids of each batch after ``put_many`` returned (i.e. after the commit)."""

from __future__ import annotations

import os
import sys

from mesh.core.store import PutStatus, StoreItem
from mesh.daemon.sqlite_store import SQLiteStore


def main() -> None:
    store = SQLiteStore(sys.argv[1])
    batch_size = int(sys.argv[2])
    n = 0
    while True:
        batch = []
        for _ in range(batch_size):
            batch.append(
                StoreItem(
                    n.to_bytes(8, "big") + os.urandom(24), os.urandom(1024), 2_000_000_000, 0, b"w"
                )
            )
            n += 1
        results = store.put_many(batch, 1_700_000_000)
        assert all(r.status is PutStatus.STORED for r in results)
        sys.stdout.write("".join(it.id.hex() + "\n" for it in batch))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
