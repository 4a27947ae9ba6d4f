"""Steppe mesh: the sans-I/O protocol core (:mod:`mesh.core`) and its drivers."""
