"""``make bench``: figures for the foundation, with baselines measured in the same run.

Run: ``.venv/bin/python -m bench`` (or ``make bench``). Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nacl.bindings as sodium

from crypto import primitives as p
from crypto.identity import Identity
from crypto.padding import BUCKETS, pad
from crypto.prekeys import PrekeyRing
from crypto.seal import OVERHEAD, open_first_contact, seal_first_contact
from mesh.core import envelope, messages
from mesh.core.store import StoreItem
from mesh.daemon.sqlite_store import SQLiteStore

NOW = int(time.time())


def rate(fn: Callable[[], object], *, seconds: float = 1.0, min_n: int = 10) -> float:
    """Calls per second of ``fn`` (best of 3 runs of about ``seconds``/3 each)."""
    fn()
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if n >= min_n and elapsed >= seconds / 3:
                break
        best = max(best, n / elapsed)
    return best


def line(label: str, value: str) -> None:
    print(f"  {label:<52} {value}")


def bench_seal() -> None:
    print("\nSeal + open of a 200-byte message (first contact, Noise X to a prekey)")
    alice, bob = Identity.generate(os.urandom), Identity.generate(os.urandom)
    ring = PrekeyRing()
    ring.create(bob, NOW, os.urandom)
    rec = ring.keys[-1].record
    bob_pub, body, hdr = bob.public(), os.urandom(200), b"header"

    def ours() -> None:
        sealed = seal_first_contact(
            alice,
            bob_pub,
            rec,
            body,
            now=NOW,
            msg_id=os.urandom(16),
            content_type=1,
            header_ad=hdr,
            rng=os.urandom,
        )
        open_first_contact(bob, ring, sealed, header_ad=hdr, now=NOW)

    # The same libsodium calls, in the same number, with no framework around them:
    # sender: 2 Ed25519 verifies (card cert, prekey record), ephemeral keygen, 2 X25519,
    # 2 AEAD encrypts; recipient: 2 X25519, 2 AEAD decrypts, 1 Ed25519 verify (sender cert).
    e_priv = os.urandom(32)
    key, nonce = os.urandom(32), bytes(12)
    inner = pad(os.urandom(200 + 200), 1024 - OVERHEAD)
    sig_msg = os.urandom(60)
    pub, sec = p.ed25519_keypair(os.urandom(32))
    sig = p.ed25519_sign(sec, sig_msg)

    def bare() -> None:
        for _ in range(3):
            sodium.crypto_sign_open(sig + sig_msg, pub)
        e_pub = sodium.crypto_scalarmult_base(e_priv)
        for _ in range(4):
            sodium.crypto_scalarmult(e_priv, e_pub)
        c1 = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(e_pub, hdr, nonce, key)
        c2 = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(inner, hdr, nonce, key)
        sodium.crypto_aead_chacha20poly1305_ietf_decrypt(c1, hdr, nonce, key)
        sodium.crypto_aead_chacha20poly1305_ietf_decrypt(c2, hdr, nonce, key)

    r_ours, r_bare = rate(ours), rate(bare)
    line("steppe seal + open", f"{r_ours:9.0f} /s")
    line("bare libsodium calls it is built on", f"{r_bare:9.0f} /s")
    line("ratio (target >= 0.50)", f"{r_ours / r_bare:9.2f}")


def bench_envelope() -> None:
    print("\nEnvelope codec (2 KiB body)")
    env = envelope.make(
        envelope.Kind.FIRST_CONTACT, NOW // 3600 + 24, b"", os.urandom(BUCKETS[1]), 8
    )

    def roundtrip() -> None:
        envelope.decode(envelope.encode(env))

    r = rate(roundtrip)
    line("encode + decode (target >= 100000 /s)", f"{r:9.0f} /s")
    line("id (BLAKE2b over header and body)", f"{rate(env.id):9.0f} /s")


def bench_store() -> None:
    print("\nSQLite store (WAL, synchronous=FULL)")
    frames = []
    for _ in range(20000):
        env = envelope.make(
            envelope.Kind.FIRST_CONTACT, NOW // 3600 + 24, b"", os.urandom(BUCKETS[1]), 8
        )
        frames.append(StoreItem(env.id(), envelope.encode(env), env.expiry, 0, b"peer"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = SQLiteStore(path)
        start = time.perf_counter()
        for i in range(0, len(frames), 500):
            store.put_many(frames[i : i + 500], NOW)
        put_rate = len(frames) / (time.perf_counter() - start)
        line("put, batches of 500 (target >= 20000 /s)", f"{put_rate:9.0f} /s")
        ids = [f.id for f in frames]
        missing = [os.urandom(32) for _ in range(1000)]
        probe = ids[:1000] + missing
        r = rate(lambda: [store.has(i) for i in probe]) * len(probe)
        line("has() hit/miss mix (target >= 200000 /s)", f"{r:9.0f} /s")
        r = rate(lambda: [store.get(i) for i in ids[:1000]]) * 1000
        line("get()", f"{r:9.0f} /s")
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
        line("bytes on disk per stored 1 KiB envelope", f"{size / len(frames):9.0f} B")
        line("  (frame itself)", f"{len(frames[0].data):9d} B")
        store.close()


def bench_sizes() -> None:
    print("\nBytes on the wire (first-contact message, whole envelope frame)")
    alice, bob = Identity.generate(os.urandom), Identity.generate(os.urandom)
    ring = PrekeyRing()
    ring.create(bob, NOW, os.urandom)
    for n in (1, 200):
        env = messages.first_contact_envelope(
            alice, bob.public(), ring.keys[-1].record, b"x" * n, now=NOW, ttl=86400, rng=os.urandom
        )
        unpadded = len(env.body) - _padding(env, bob, ring)
        line(f"{n:3d}-byte message: sealed before padding", f"{unpadded:5d} B")
        line(f"{n:3d}-byte message: body after padding (bucket)", f"{len(env.body):5d} B")
        line(
            f"{n:3d}-byte message: envelope frame on the wire", f"{len(envelope.encode(env)):5d} B"
        )


def _padding(env: envelope.Envelope, bob: Identity, ring: PrekeyRing) -> int:
    """Zero bytes of padding inside the sealed payload (we can see them: we are Bob)."""
    from crypto.noise import HandshakeState, KeyPair
    from crypto.seal import PROLOGUE

    k = ring.keys[-1]
    hs = HandshakeState(
        "X", False, PROLOGUE + env.header(), rng=os.urandom, s=KeyPair(k.private, k.record.public)
    )
    payload = hs.read_message(env.body)
    used = int.from_bytes(payload[:4], "big")
    return len(payload) - 4 - used


def main() -> None:
    print("Steppe benchmarks (figures, not pass/fail)")
    bench_seal()
    bench_envelope()
    bench_store()
    bench_sizes()
    from bench import node

    node.main()


if __name__ == "__main__":
    main()
