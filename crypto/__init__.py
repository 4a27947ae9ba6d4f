"""Steppe cryptography: pure functions over PyNaCl (libsodium) and hashlib.

Nothing in this package performs I/O, reads a clock or keeps module-level mutable state.
Time arrives as an ``int`` of Unix seconds and randomness as an :data:`Rng` callable
(``os.urandom`` in the daemon, a seeded generator in the simulator and the tests).
"""
