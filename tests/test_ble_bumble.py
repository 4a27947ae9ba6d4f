"""The Bumble backend on its own, against raw Bumble devices on a virtual radio: dialling
while others connect to us, and dials that fail. The real Bumble host stack on both sides
(none of our code in the peers); asyncio only, as the backend runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bumble import hci

from mesh.daemon.links.ble.backend import BackendError, Timing
from mesh.daemon.links.ble.bumble import BumbleBackend
from tests.ble_helpers import RawPeer, radio_name

FAR = "FF:FF:FF:FF:FF:FE"  # above any radio's address: our radio dials it
NEAR = "C0:00:00:00:00:01"  # below: it is never dialled, it dials us


class Events:
    """What the backend reports (its BackendEvents), kept for the test to look at."""

    def __init__(self) -> None:
        self.heard: set[str] = set()
        self.ups: list[tuple[int, bool, str]] = []
        self.downs: list[int] = []

    def seen(self, address: str, /) -> None:
        self.heard.add(address)

    def link_up(self, link: int, central: bool, frame: int, address: str, /) -> None:
        self.ups.append((link, central, address))

    def frame(self, link: int, data: bytes, /) -> None:
        pass

    def link_down(self, link: int, reason: str, /) -> None:
        self.downs.append(link)


async def until(what: str, ok: Callable[[], bool], limit: float = 10.0) -> None:
    """Poll ``ok`` (state the backend's callbacks change) until true, for ``limit`` s."""
    for _ in range(int(limit / 0.02)):
        if ok():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def started(name: str, timing: Timing) -> tuple[BumbleBackend, Events]:
    backend, events = BumbleBackend(f"local:{name}"), Events()
    await backend.start(events, timing)
    return backend, events


async def silent_until_seen(peer: RawPeer, events: Events) -> None:
    """The peer advertises Steppe until our radio has heard it, then goes quiet, so a
    dial to it stays pending until it advertises again."""
    await peer.power_on()
    await peer.serve_silently()
    await until("the peer heard", lambda: FAR in events.heard)
    assert peer.device is not None
    await peer.device.stop_advertising()
    peer.serving = False  # and stays quiet after a connection


def test_a_central_connecting_while_we_dial_is_not_taken_for_the_dialled_peer() -> None:
    """Bumble's Device.connect takes whatever connection completes next; a central that
    connects to us mid-dial must not become the dialled link (it did: the dial then ran
    GATT set-up on it and failed)."""
    name = radio_name()

    async def main() -> None:
        backend, events = await started(name, Timing(advertise_interval=50))
        far, near = RawPeer(name, FAR), RawPeer(name, NEAR)
        try:
            await silent_until_seen(far, events)
            dial = asyncio.ensure_future(backend.dial(FAR))
            await asyncio.sleep(0.3)  # the connect is pending in our controller
            await near.power_on()
            assert near.device is not None
            ours = hci.Address(backend.radios[0].address)
            incoming = asyncio.ensure_future(near.device.connect(ours, timeout=10))
            await asyncio.sleep(0.3)  # time for it to land, were we advertising
            await far._advertise()  # the dialled peer is back: our connect completes
            await dial
            assert [(c, a) for _id, c, a in events.ups] == [(True, FAR)]
            await incoming  # and the other central gets in once the dial is over
            await until(
                "its connection on our side",
                lambda: any(not x.central for x in backend.links.values()),
            )
        finally:
            await backend.stop()
            await far.close()
            await near.close()

    asyncio.run(main())


def test_a_dial_given_up_leaves_the_radio_able_to_dial_again() -> None:
    """A dial that times out is cancelled in the controller: when the peer advertises
    again nothing half-made completes behind the host's back, and the next dial works
    (on Bumble's virtual controller the cancel was a no-op and the radio could never
    reach that peer again)."""
    name = radio_name()

    async def main() -> None:
        backend, events = await started(name, Timing(connect_timeout=0.5))
        far = RawPeer(name, FAR)
        try:
            await silent_until_seen(far, events)
            try:
                await backend.dial(FAR)
            except BackendError:
                pass
            else:
                raise AssertionError("a dial to a silent peer succeeded")
            far.serving = True
            await far._advertise()
            await asyncio.sleep(0.3)  # a connect left pending would complete now
            assert far.connections == []
            await backend.dial(FAR)
            assert [(c, a) for _id, c, a in events.ups] == [(True, FAR)]
        finally:
            await backend.stop()
            await far.close()

    asyncio.run(main())
