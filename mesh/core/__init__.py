"""The sans-I/O protocol core. No sockets, threads, event loops or wall-clock time here:
time comes in as ``now`` (int Unix seconds) and randomness as an ``Rng`` callable."""
