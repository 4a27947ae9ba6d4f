"""``make demo-ble``: two daemon processes meet over Bluetooth LE on virtual controllers
served by Bumble's ``bumble.apps.controllers`` on loopback TCP, and exchange a message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ble_demo_across_processes() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mesh.demo_ble"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "a Bluetooth LE link, Noise handshake done" in out
    assert " ble " in out  # steppe peers shows the link's kind
    assert "Bob's inbox: from Alice: 'No network here." in out
    assert re.search(r"links_ble = [1-9]", out)
    assert r.stderr == ""
