"""Deterministic identities: the same inputs always give the same id.

Replays, redeliveries and resubmitted feeds therefore produce the same claim,
remittance and rework ids, which is what makes every stage idempotent.
"""

from __future__ import annotations

import hashlib


def stable_id(prefix: str, *parts: object, length: int = 16) -> str:
    """``prefix`` + the first *length* hex digits of SHA-256 over *parts*."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}{digest[:length].upper()}"


def claim_id_for(encounter_id: str, frequency_code: str = "1", sequence: int = 1) -> str:
    """Claim id (CLM01, 17 characters) of the claim billing *encounter_id*."""
    return stable_id("C", encounter_id, frequency_code, sequence)


def unit_draw(*parts: object) -> float:
    """A number in [0, 1) fixed by *parts*: the simulator's reproducible randomness."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
