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
        ("[radio]\nx = 1", "unknown table [radio] (known: daemon, lan, gateway"),
        ("[gatway]\npeers = []", "unknown table [gatway] (did you mean [gateway]?)"),
        ("[lan]\nintefaces = []", "unknown key lan.intefaces; did you mean lan.interfaces?"),
        ("[daemon]\nmode = 'server'", "daemon.mode must be 'user' or 'relay'"),
        ("[gateway]\npeers = ['nohost']", "'nohost' is not host:port"),
        ("[gateway]\npeers = [5]", 'gateway.peers[0] must be "host:port" or'),
        ("[routing]\nstrategy = 'flood'", "routing.strategy must be one of"),
        ("[routing]\nreceipt_delay = [5, 1]", "routing.receipt_delay must be [min, max]"),
        ("[store]\nmax_bytes = 10", "store.max_bytes must be at least 1 MiB"),
        ("lan = [", "not valid TOML"),
        ("[limits]\nlink_rate = 0", "limits.link_rate must be > 0"),
        ('[lan]\ndiscovery_group = "not-an-ip"', "lan.discovery_group must be an IPv4 multicast"),
        ('[lan]\ndiscovery_group = "10.0.0.1"', "lan.discovery_group must be an IPv4 multicast"),
        ('[lan]\nlisten = "999.1.1.1"', "lan.listen must be an IP address"),
        ('[lan]\nlisten = "localhost"', "lan.listen must be an IP address"),
        (
            '[lan]\ninterfaces = ["nosuch0"]',
            "lan.interfaces: this machine has no interface 'nosuch0'",
        ),
        ("[lan]\ndiscovery_port = 0", "lan.discovery_port must be between 1 and 65535"),
        ("[lan]\nbeacon_interval = nan", "lan.beacon_interval must be > 0"),
        ("[gateway]\nbackoff_max = -1", "gateway.backoff_max must be > 0"),
        ("[gateway]\npeers = ['h:0']", "gateway.peers: 'h:0' is not host:port"),
        ("[store]\nbundle_max_bytes = -5", "store.bundle_max_bytes must be at least 64 KiB"),
        ("[store]\nmax_envelopes = 0", "store.max_envelopes must be at least 1"),
        ("[limits]\nlink_burst = inf", "limits.link_burst must be at least 1"),
        ("[limits]\ntrial_rate = -2", "limits.trial_rate must be > 0"),
        ("[limits]\nidle_timeout = 5", "limits.idle_timeout must be at least 30"),
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


def test_good_addresses_and_interfaces_pass() -> None:
    cfg = parse('[lan]\nlisten = "::1"\ndiscovery_group = "224.0.0.251"\ninterfaces = ["lo"]\n')
    assert (cfg.listen, cfg.discovery_group, cfg.interfaces) == ("::1", "224.0.0.251", ("lo",))
    assert parse('[lan]\nlisten = ""\n').listen == ""


def test_steppe_config_names_the_default_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STEPPE_CONFIG points every command, and a daemon the UI starts, at one file."""
    from mesh.daemon.config import default_config_path, load

    cfg = tmp_path / "lo.toml"
    cfg.write_text('[lan]\nlisten = "127.0.0.1"\nport = 0\ninterfaces = ["lo"]\n')
    monkeypatch.setenv("STEPPE_CONFIG", str(cfg))
    assert default_config_path() == cfg
    got = load(None)
    assert (got.listen, got.port, got.interfaces) == ("127.0.0.1", 0, ("lo",))
    monkeypatch.delenv("STEPPE_CONFIG")
    assert default_config_path().name == "config.toml"
    assert default_config_path() != cfg
