"""Medicare fee schedules: the physician fee schedule, the lab fee schedule and drug prices.

The physician fee schedule (PFS) amount of a code is

    (work RVU x work GPCI + PE RVU x PE GPCI + MP RVU x MP GPCI) x conversion factor

with the non-facility practice expense RVU for services in an office and the
facility one elsewhere, and the GPCIs of the Medicare locality where the
service was given. Clinical lab codes are paid from the Clinical Laboratory Fee
Schedule (CLFS) and Part B drugs from the ASP payment limits. Other payers in
the simulator price as a percentage of these Medicare amounts.

Sources and editions are in ``fee_schedules.md``; every amount is integer cents.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from pathlib import Path

REFDATA_DIR = Path(__file__).resolve().parent

# Places of service CMS pays at the facility rate (hospitals, SNFs, ASCs and the like);
# everything else, the office (11) among them, is paid at the non-facility rate.
FACILITY_PLACES_OF_SERVICE = frozenset(
    {
        "19",
        "21",
        "22",
        "23",
        "24",
        "26",
        "31",
        "34",
        "41",
        "42",
        "51",
        "52",
        "53",
        "56",
        "61",
    }
)
CENT = Decimal("0.01")
# The national payment amount: every GPCI 1.0, for places outside the shipped localities.
NATIONAL_LOCALITY = "national"


@dataclass(frozen=True)
class PfsRvu:
    """One code's row of the PFS relative value file (national, no modifier)."""

    code: str
    status: str
    work: Decimal
    pe_nonfacility: Decimal
    pe_facility: Decimal
    malpractice: Decimal


@dataclass(frozen=True)
class Gpci:
    """Geographic practice cost indices of one Medicare payment locality."""

    locality_id: str
    state: str
    name: str
    work: Decimal
    pe: Decimal
    malpractice: Decimal


@dataclass(frozen=True)
class FeeSchedules:
    """The Medicare fee schedules the payer profiles price from."""

    conversion_factor: Decimal
    rvus: dict[str, PfsRvu]
    gpcis: dict[str, Gpci]
    clfs_cents: dict[str, int]
    asp_dollars: dict[str, Decimal]
    edition: str
    _cache: dict[tuple[str, str, bool], int | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    def locality_for_state(self, state: str) -> str | None:
        """The locality of *state* when the whole state is one locality, else None."""
        return self._state_localities.get(state)

    @cached_property
    def _state_localities(self) -> dict[str, str]:
        by_state: dict[str, list[str]] = {}
        for gpci in self.gpcis.values():
            by_state.setdefault(gpci.state, []).append(gpci.locality_id)
        return {state: ids[0] for state, ids in by_state.items() if len(ids) == 1}

    def pfs_unit_cents(self, code: str, locality_id: str, facility: bool) -> int | None:
        """The PFS amount of one unit of *code* in *locality_id*; None when unpriced."""
        key = (code, locality_id, facility)
        if key not in self._cache:
            self._cache[key] = self._pfs(code, locality_id, facility)
        return self._cache[key]

    def _pfs(self, code: str, locality_id: str, facility: bool) -> int | None:
        rvu = self.rvus.get(code)
        gpci = self.gpcis.get(locality_id)
        if gpci is None and locality_id == NATIONAL_LOCALITY:
            gpci = Gpci(NATIONAL_LOCALITY, "", "National", Decimal(1), Decimal(1), Decimal(1))
        if rvu is None or gpci is None:
            return None
        pe = rvu.pe_facility if facility else rvu.pe_nonfacility
        total = rvu.work * gpci.work + pe * gpci.pe + rvu.malpractice * gpci.malpractice
        if total == 0:
            return None
        dollars = (total * self.conversion_factor).quantize(CENT, rounding=ROUND_HALF_UP)
        return int(dollars * 100)

    def medicare_cents(self, code: str, units: int, locality_id: str, facility: bool) -> int | None:
        """What Medicare allows for *units* of *code*: CLFS, then ASP, then the PFS.

        None when no schedule prices the code. ASP limits are per HCPCS unit to
        a tenth of a cent, so the line total is rounded once, not each unit.
        """
        if code in self.clfs_cents:
            return self.clfs_cents[code] * units
        if code in self.asp_dollars:
            total = (self.asp_dollars[code] * units).quantize(CENT, rounding=ROUND_HALF_UP)
            return int(total * 100)
        unit = self.pfs_unit_cents(code, locality_id, facility)
        return None if unit is None else unit * units


def _decimal(value: str) -> Decimal:
    return Decimal(value) if value.strip() else Decimal(0)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f) if not r[next(iter(r))].startswith("#")]


def load_fee_schedules(directory: Path = REFDATA_DIR) -> FeeSchedules:
    """Read the fee schedule tables shipped in *directory*."""
    meta = json.loads((directory / "fee_schedules.json").read_text())
    rvus = {
        r["code"]: PfsRvu(
            r["code"],
            r["status"],
            _decimal(r["work_rvu"]),
            _decimal(r["nonfacility_pe_rvu"]),
            _decimal(r["facility_pe_rvu"]),
            _decimal(r["mp_rvu"]),
        )
        for r in _rows(directory / "mpfs_rvu.csv")
    }
    gpcis = {
        r["locality_id"]: Gpci(
            r["locality_id"],
            r["state"],
            r["locality_name"],
            _decimal(r["work_gpci"]),
            _decimal(r["pe_gpci"]),
            _decimal(r["mp_gpci"]),
        )
        for r in _rows(directory / "mpfs_gpci.csv")
    }
    clfs = {r["code"]: int(r["rate_cents"]) for r in _rows(directory / "clfs.csv")}
    asp = {r["code"]: Decimal(r["payment_limit_dollars"]) for r in _rows(directory / "asp.csv")}
    return FeeSchedules(
        conversion_factor=Decimal(meta["pfs_conversion_factor"]),
        rvus=rvus,
        gpcis=gpcis,
        clfs_cents=clfs,
        asp_dollars=asp,
        edition=meta["edition"],
    )
