"""Daemon configuration: defaults, the shipped relay config, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.daemon.config import Config, ConfigError, load, parse

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_and_the_shipped_relay_config() -> None:
    assert parse("") == Config()
    cfg = load(ROOT / "deploy" / "config.toml")
    assert cfg.mode == "relay"
    assert cfg.passphrase_file == "/etc/steppe/passphrase"
    assert cfg.store_max_bytes == 1 << 30
    assert cfg.port == 47470
    assert (cfg.link_rate, cfg.link_burst) == (200.0, 2000.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[lan]\nport = 'x'", "lan.port must be int"),
        ("[lan]\nport = 70000", "lan.port must be between 0 and 65535"),
        ("[lan]\nspeed = 1", "unknown key lan.speed"),
        ("[radio]\nx = 1", "unknown table [radio]"),
        ("[daemon]\nmode = 'server'", "daemon.mode must be 'user' or 'relay'"),
        ("[gateway]\npeers = ['nohost']", "'nohost' is not host:port"),
        ("[gateway]\npeers = [5]", 'gateway.peers[0] must be "host:port" or'),
        ("[routing]\nstrategy = 'flood'", "routing.strategy must be one of"),
        ("[routing]\nreceipt_delay = [5, 1]", "routing.receipt_delay must be [min, max]"),
        ("[store]\nmax_bytes = 10", "store.max_bytes must be at least 1 MiB"),
        ("lan = [", "not valid TOML"),
        ("[limits]\nlink_rate = 0", "limits.link_rate must be > 0"),
    ],
)
def test_bad_config_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, "cfg.toml")
    line = str(info.value)
    assert message in line
    assert line.startswith("cfg.toml: ")
    assert "\n" not in line


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config file"):
        load(tmp_path / "absent.toml")
