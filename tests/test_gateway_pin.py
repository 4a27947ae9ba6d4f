"""Pinning a relay's link key in ``gateway.peers``: the syntax, and over loopback a link
whose key differs is refused, counted and logged (without the address or the key)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from crypto.noise import KeyPair
from mesh.daemon.config import ConfigError, parse
from mesh.daemon.daemon import Daemon, relay_link_key
from tests.daemon_helpers import loopback_config, make_profile

KEY = "ab" * 32


def test_a_peer_entry_may_pin_a_link_key() -> None:
    cfg = parse(
        f'[gateway]\npeers = ["10.0.0.1:47470", {{ addr = "relay.example:47470", key = "{KEY}" }}]'
    )
    assert cfg.peers == ("10.0.0.1:47470", "relay.example:47470")
    assert cfg.peer_keys == ("", KEY)
    assert parse(f'[gateway]\npeers = [{{ addr = "h:1", key = "{KEY.upper()}" }}]').peer_keys == (
        KEY,
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('{ addr = "h:1", key = "abcd" }', "gateway.peers[0].key must be the peer's link key"),
        ('{ addr = "h:1", key = "' + "zz" * 32 + '" }', "gateway.peers[0].key must be"),
        ('{ addr = "h:1" }', 'gateway.peers[0] must be "host:port" or { addr'),
        ('{ addr = "h:1", key = "' + KEY + '", x = 1 }', "gateway.peers[0] must be"),
        ('{ addr = 5, key = "' + KEY + '" }', "gateway.peers[0].addr must be str"),
        ('{ addr = "nohost", key = "' + KEY + '" }', "'nohost' is not host:port"),
    ],
)
def test_a_bad_pinned_entry_is_one_line(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(f"[gateway]\npeers = [{entry}]", "c.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("c.toml: ")


def _links_to_relay(tmp_path: Path, pin: str, caplog: pytest.LogCaptureFixture) -> Daemon:
    now = int(time.time())
    relay, user = make_profile(tmp_path, "Relay", now), make_profile(tmp_path, "User", now)
    r = Daemon(relay, loopback_config(lan=False, mode="relay"), relay.path, handle_signals=False)
    u = Daemon(user, loopback_config(lan=False), user.path, handle_signals=False)

    async def main() -> None:
        async with trio.open_nursery() as n:
            await n.start(r.run)
            key = pin or KeyPair.from_private(relay_link_key(relay)).public.hex()
            u.config = replace(
                u.config, peers=(f"127.0.0.1:{r.tcp_port}",), peer_keys=(key,), backoff_max=0.5
            )
            await n.start(u.run)

            def settled() -> bool:
                opened = any(x.opened for x in u.links.values())
                return opened or u.stats.get("links_refused_key", 0) >= 2

            with trio.fail_after(20):
                while not settled():  # noqa: ASYNC110 - polling the daemon's state
                    await trio.sleep(0.02)
            await trio.sleep(0.3)
            assert any(x.opened for x in r.links.values()) == (not pin)
            n.cancel_scope.cancel()

    with caplog.at_level(logging.INFO):
        trio.run(main)
    return u


def test_the_pinned_key_links(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    u = _links_to_relay(tmp_path, "", caplog)
    assert "links_refused_key" not in u.stats
    assert "not the pinned one" not in caplog.text


def test_a_link_whose_key_differs_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    u = _links_to_relay(tmp_path, KEY, caplog)
    assert u.stats["links_refused_key"] >= 2  # and again on each redial
    lines = [r.getMessage() for r in caplog.records if "pinned" in r.getMessage()]
    assert lines[0] == "gateway.peers[0]: link key is not the pinned one; link refused"
    assert "127.0.0.1" not in caplog.text
