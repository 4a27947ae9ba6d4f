"""The error roots of the core, split as h11 splits them.

- :class:`PeerError`: *the peer broke the protocol*. Raised by the parse boundary of every
  layer that reads bytes from someone else (link records and handshake, protocol
  messages, envelopes, bundles). The node answers it by closing that link and counting
  it; a bundle is refused with the error's line. It never stops a node.
- :class:`LocalError`: *we broke it* (a caller misused the API). It is not caught by the
  core: it surfaces in tests and, in the daemon, as one readable line to the client.

Anything else that escapes the core is a bug of ours and is left to surface (the fuzz
harness in ``tests/test_fuzz_node.py`` counts any such escape as a failure).

:class:`crypto.errors.CryptoError` (authentication, signature and decoding failures of
input from someone else) is its own root, because :mod:`crypto` does not import the mesh;
the parse boundaries turn it into a peer error.
"""

from __future__ import annotations


class SteppeError(Exception):
    """Root of the errors the core raises on purpose."""


class PeerError(SteppeError):
    """The peer (or the author of a file) sent something that breaks the protocol."""


class LocalError(SteppeError):
    """The caller used the core wrongly (a bug of ours or a bad request)."""


class MalformedInput(PeerError, ValueError):
    """Bytes from a peer that do not parse (also a :class:`ValueError`, as it was)."""


class ConfigError(LocalError, ValueError):
    """A setting or argument out of range (also a :class:`ValueError`, as it was)."""
