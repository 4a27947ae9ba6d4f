"""Sneakernet: a bundle file carried between two islands that share no network."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from crypto.errors import DecodeError
from crypto.wire import pack
from mesh import ipc
from mesh.core import bundle
from mesh.core import envelope as E
from mesh.daemon.daemon import Daemon
from tests.daemon_helpers import befriend, loopback_config, make_profile

NOW = 1_800_000_000


def test_bundle_codec_refuses_bad_files() -> None:
    good = bundle.Bundle(NOW, NOW + 3600, [b"x" * 10]).encode()
    assert bundle.decode(good, 1 << 20, NOW).frames == [b"x" * 10]
    with pytest.raises(bundle.BundleError, match="larger than the limit of 10 bytes"):
        bundle.decode(good, 10, NOW)
    with pytest.raises(bundle.BundleError, match="expired"):
        bundle.decode(good, 1 << 20, NOW + 3600)
    damaged = "this bundle is damaged or incomplete (was it copied whole?)"
    for bad in (good[:20], good + b"\x00", good[:5], b"\x95" + good[1:20]):
        with pytest.raises(bundle.BundleError) as info:
            bundle.decode(bad, 1 << 20, NOW)
        assert str(info.value) == damaged
        assert isinstance(info.value.__cause__, DecodeError)  # the parser's reason, inside
    with pytest.raises(bundle.BundleError, match=r"^this file is not a Steppe bundle$"):
        bundle.decode(pack(["zip", 1, NOW, NOW + 9, []]), 1 << 20, NOW)
    with pytest.raises(bundle.BundleError, match=r"^this file is empty"):
        bundle.decode(b"", 1 << 20, NOW)
    future = pack([bundle.MAGIC, 3, NOW, NOW + 9, [], [], []])
    with pytest.raises(bundle.BundleError, match=r"version of Steppe \(bundle version 3; this"):
        bundle.decode(future, 1 << 20, NOW)


def test_courier_carries_mail_between_islands(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    stick = tmp_path / "usb" / "mail.steppe"
    stick.parent.mkdir()
    cfg = loopback_config(lan=False)  # islands: no links at all

    async def main() -> None:
        a = Daemon(alice, cfg, alice.path, handle_signals=False)
        b = Daemon(bob, cfg, bob.path, handle_signals=False)
        async with trio.open_nursery() as n:
            await n.start(a.run)
            await n.start(b.run)
            # Bob's prekey travels to Alice's island first, on a stick.
            out = b.ops.export(str(stick))
            assert out.envelopes == 1
            got = a.ops.import_(str(stick))
            assert got["envelopes"] == got["stored"] == 1
            assert sum(got[k] for k in ("known", "expired", "over_quota", "invalid")) == 0
            assert a.node.contacts[bob.identity.sign_public].prekey is not None
            # Importing the same bundle again stores nothing twice.
            again = a.ops.import_(str(stick))
            assert (again["known"], again["stored"], again["invalid"]) == (1, 0, 0)
            a.send_text("Bob", "carried by hand")
            a.ops.export(str(stick))
            # A tampered copy of one envelope inside the bundle is refused and counted;
            # the rest of the bundle still counts.
            data = bundle.decode(stick.read_bytes(), 1 << 26, a.now())
            forged = bytearray(data.frames[0])
            forged[-40] ^= 1
            bad = bundle.Bundle(data.created, data.expires, [bytes(forged), *data.frames])
            stick.write_bytes(bad.encode())
            got = b.ops.import_(str(stick))
            assert got["delivered"] == 1
            assert (got["invalid"], got["known"]) == (1, 0)
            assert [m.text for m in b.history.messages()] == ["carried by hand"]
            b.config = loopback_config(lan=False, bundle_max_bytes=100)
            with pytest.raises(ipc.IpcError, match="larger than the limit"):
                b.ops.import_(str(stick))
            n.cancel_scope.cancel()

    trio.run(main)
    kinds = {E.decode(f).kind for f in bundle.decode(stick.read_bytes(), 1 << 26, now).frames}
    assert E.Kind.FIRST_CONTACT in kinds


def test_receipts_ride_back_on_the_stick_and_the_sender_sees_delivered(tmp_path: Path) -> None:
    """Mail delivered by USB used to stay [queued] at its sender for ever: bundles held
    envelopes only. Now the recipient's released receipt goes back in the next bundle."""
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    stick = tmp_path / "mail.steppe"
    cfg = loopback_config(lan=False)

    async def main() -> None:
        a = Daemon(alice, cfg, alice.path, handle_signals=False)
        b = Daemon(bob, cfg, bob.path, handle_signals=False)
        async with trio.open_nursery() as n:
            await n.start(a.run)
            await n.start(b.run)
            b.ops.export(str(stick))
            a.ops.import_(str(stick))
            a.send_text("Bob", "by hand")
            assert a.ops.export(str(stick)).receipts == 0
            assert b.ops.import_(str(stick))["delivered"] == 1
            with trio.fail_after(10):  # the receipt is released after 1-2 s
                while not b.node.courier.export_receipts(b.now())[0]:  # noqa: ASYNC110
                    await trio.sleep(0.1)
            assert b.ops.export(str(stick)).receipts == 1
            got = a.ops.import_(str(stick))
            assert (got["receipts"], got["acked"]) == (1, 1)
            assert [m.state for m in a.history.messages()] == ["acked"]
            n.cancel_scope.cancel()

    trio.run(main)


def test_bundle_versions_and_damaged_receipts() -> None:
    v1 = pack(["steppe-bundle", 1, NOW, NOW + 60, [b"x"]])
    assert bundle.decode(v1, 1 << 20, NOW).receipts == []
    good = bundle.Bundle(NOW, NOW + 60, [], [bytes(16)]).encode()
    assert bundle.decode(good, 1 << 20, NOW).receipts == [bytes(16)]
    for bad in (
        pack(["steppe-bundle", 2, NOW, NOW + 60, [], [b"short"]]),
        pack(["steppe-bundle", 2, NOW, NOW + 60, []]),
        pack(["steppe-bundle", 1, NOW, NOW + 60, [], []]),
        pack(["steppe-bundle", 3, NOW, NOW + 60, [], []]),
    ):
        with pytest.raises(bundle.BundleError):
            bundle.decode(bad, 1 << 20, NOW)
