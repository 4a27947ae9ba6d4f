"""How strong a new passphrase is, by a simple rule a person can check by eye.

The keystore is wrapped under Argon2id (:mod:`crypto.keystore`), so each guess costs a
seized laptop's attacker about a second of one core and 256 MiB; what protects the keys is
then how many guesses the passphrase needs. A passphrase is *weak* when it has fewer than
:data:`MIN_LENGTH` characters, or fewer than :data:`MIN_DISTINCT` different characters
(``aaaaaaaaaaaa``, ``121212121212``). Four or more ordinary words pass: "correct horse
battery staple" is long and varied. The rule is deliberately short (no word list, no
library): zxcvbn-style estimators are better at spotting ``Password2024!``, but the Python
port is thinly maintained and a dictionary of hundreds of kilobytes is a lot of code to
trust for a warning the user may override anyway.

A weak passphrase is not refused: ``steppe id new`` warns and asks for confirmation (or
``--allow-weak-passphrase`` when no one is at a terminal).
"""

from __future__ import annotations

MIN_LENGTH = 12
MIN_DISTINCT = 6


def weakness(passphrase: str) -> str:
    """Why ``passphrase`` is weak, in words for its owner; ``""`` if it is not."""
    if len(passphrase) < MIN_LENGTH:
        return f"it has {len(passphrase)} characters, fewer than {MIN_LENGTH}"
    if len(set(passphrase)) < MIN_DISTINCT:
        return f"it uses only {len(set(passphrase))} different characters"
    return ""
