"""Parameters of the synthetic feed: payers, places, visit kinds, shares, weighted draws."""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterable
from datetime import date
from itertools import accumulate
from typing import Any, Generic, TypeVar

Record = dict[str, Any]
T = TypeVar("T")

DEFAULT_START = date(2026, 1, 5)
SOURCE = "synthetic"
SIMULATED_DAYS = 304  # about ten months of calendar days; visits fall on weekdays
MIN_PANEL = 20

MEDICARE = "MCR-B-SIM"
MEDICAID = "MCD-SIM"
PPO = "PPO-SIM"
HMO = "HMO-SIM"
SELF_PAY = "SELFPAY"
COMMERCIAL = (PPO, HMO)

OFFICE = "11"
TELEHEALTH = "02"

# Visit kinds: the complexity of an office E/M visit, a preventive visit coded by
# age, a Medicare annual wellness visit, or no E/M at all (None).
LOW = "low"
MODERATE = "moderate"
HIGH = "high"
PREVENTIVE = "preventive"
WELLNESS = "wellness"
OFFICE_VISITS = (LOW, MODERATE, HIGH)

FAMILY_MEDICINE = "207Q00000X"
INTERNAL_MEDICINE = "207R00000X"
PEDIATRICS = "208000000X"
NURSE_PRACTITIONER_FAMILY = "363LF0000X"
ORTHOPAEDIC_SURGERY = "207X00000X"
NEUROLOGY = "2084N0400X"

CLEAN = "clean"
NON_COVERED_SERVICE = "non_covered_service"

TELEHEALTH_SHARE = 0.2
MEDICARE_ROUTINE_PHYSICAL_SHARE = 0.15
REFERRED_IMAGING_SHARE = 0.7
OWN_CLINICIAN_SHARE = 0.85
NEW_PATIENT_SHARE = 0.15
UNDERCODED_SHARE = 0.03
OTHER_BASIS_LOWER_SHARE = 0.3
RECENT_ENCOUNTERS = 10
DUPLICATE_SOURCE_SHARE = 0.1
PROBLEM_TRIES = 40
PATIENT_TRIES = 10
SCENARIO_TRIES = 4


class Weighted(Generic[T]):
    """Values drawn in proportion to their weights (cheaper than ``random.choices`` per draw)."""

    def __init__(self, pairs: Iterable[tuple[T, float]]) -> None:
        entries = list(pairs)
        self.values = [value for value, _ in entries]
        self.cumulative = list(accumulate(weight for _, weight in entries))

    def draw(self, rng: random.Random) -> T:
        """One value, chosen with *rng*."""
        at = bisect(self.cumulative, rng.random() * self.cumulative[-1], 0, len(self.values) - 1)
        return self.values[at]
