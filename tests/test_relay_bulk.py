"""A relay that holds thousands of envelopes for one person hands over all of them
(issue 10, part 2): no reconciliation limit closes the link, every session tag is
recognised whatever the order, and a rate-limited transfer runs at the limit's rate until
it is done."""

from __future__ import annotations

from mesh.core.node import NodeConfig
from tests.netsim import Net, bulk_wire_bytes


def _away_and_back(n: int, cfg: NodeConfig, contact_seconds: float, seed: int) -> Net:
    """Alice writes ``n`` messages to Bob, who is away; a relay carries them; Bob comes
    back and dials the relay, the only node he meets."""
    net = Net(seed=seed)
    a, r, b = net.add(cfg), net.add(cfg), net.add(cfg)
    net.introduce_all()
    for k in range(n):
        net.send(a, b, b"message %d" % k)
    la, _ = net.connect(a, r)
    net.run(contact_seconds)
    net.disconnect(a, la)
    assert net.nodes[r].store.count() >= n
    net.connect(b, r)  # Bob dials: he reconciles, the relay serves
    net.run(contact_seconds)
    return net


def test_ten_thousand_messages_through_one_relay_arrive_exactly_once() -> None:
    cfg = NodeConfig(mint_difficulty=1, base_difficulty=0, receipt_delay=(5, 30))
    n = 10_000
    # The default flood limit: a burst of 400, then 50 envelopes per second per link.
    net = _away_and_back(n, cfg, contact_seconds=n / cfg.link_rate + 60, seed=51)
    got = [m.body for m in net.delivered[2]]
    assert len(got) == n, f"{len(got)} of {n} delivered"
    assert sorted(got) == sorted(b"message %d" % k for k in range(n))
    assert not [c for c in net.closes if "MORE" in c[1] or "converge" in c[1]]


def test_a_thousand_waiting_reconcile_without_closing_the_link() -> None:
    """'bad MORE request' used to close the link once ~190 were waiting, at every
    contact, so nothing was ever delivered."""
    cfg = NodeConfig(
        mint_difficulty=1, base_difficulty=0, link_rate=1e6, link_burst=1e6, sync_symbols=512
    )
    net = _away_and_back(1000, cfg, contact_seconds=30, seed=52)
    assert net.closes == []
    assert len(net.delivered[2]) == 1000
    assert net.nodes[2].stats.get("sync_rounds", 0) > 0  # split into ranges below the cap


def test_bulk_bytes_on_a_stream_link_stay_within_one_and_a_half_envelopes() -> None:
    """Records gather many offers, asks and envelopes and are padded to a size bucket, not
    to the MTU: in bulk, a 100-byte message costs at most 1.5 times its envelope on the
    wire, uploading to a relay and downloading from it. It cost 4,264 bytes (14 times)
    when every envelope travelled in its own 4 KiB record."""
    n = 1000
    run = bulk_wire_bytes(n, seconds=30)
    envelope, uploaded, downloaded = run.envelope, run.uploaded, run.downloaded
    assert run.relay_holds >= n
    assert uploaded / n <= 1.5 * envelope, (uploaded / n, envelope)
    assert run.delivered == n + 1
    assert downloaded / n <= 1.5 * envelope, (downloaded / n, envelope)
