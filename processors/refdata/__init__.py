"""Reference data: code sets, the chargemaster, adjustment codes and payer profiles.

Each table is loaded once per process and indexed for constant-time lookups.
Every file states its source and edition in the Markdown file beside it; the
``*_VERSION`` constants are the edition ids carried in provenance fields.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REFDATA_DIR = Path(__file__).resolve().parent
PAYERS_DIR = REFDATA_DIR / "payers"

ICD10CM_VERSION = "ICD-10-CM-FY2026-Apr"
PROCEDURE_CODES_VERSION = "CPT-2026+HCPCS-2026"
ADJUSTMENT_CODES_VERSION = "CARC-RARC-2026"
RULESET_VERSION = f"rules-1|{ICD10CM_VERSION}|{PROCEDURE_CODES_VERSION}"


@dataclass(frozen=True)
class ProcedureCode:
    """A CPT or HCPCS code the pipeline knows, with our category and unit ceiling."""

    code: str
    code_set: str
    category: str
    max_units_per_day: int


class Icd10Cm:
    """ICD-10-CM index (codes without dots) built once from simple-icd-10-cm."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import simple_icd_10_cm as cm  # noqa: PLC0415 - loading takes ~1.5 s, done on first use

        self._cm = cm
        self._billable: dict[str, bool] = {}
        for code in cm.get_all_codes(with_dots=False):
            if cm.is_category_or_subcategory(code):
                self._billable[code] = cm.is_leaf(code)

    def exists(self, code: str) -> bool:
        """True when *code* (no dot) is an ICD-10-CM category, subcategory or code."""
        return code in self._billable

    def is_billable(self, code: str) -> bool:
        """True when *code* is valid for billing (a leaf of the classification)."""
        return self._billable.get(code, False)

    def billable_children(self, code: str, limit: int = 12) -> list[str]:
        """Billable codes under header *code*, without dots, at most *limit*."""
        if code not in self._billable:
            return []
        found = [
            c.replace(".", "")
            for c in self._cm.get_descendants(code)
            if self._billable.get(c.replace(".", ""), False)
        ]
        return found[:limit]

    def display(self, code: str) -> str:
        """*code* with its dot, for messages."""
        return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


@dataclass(frozen=True)
class PayerProfile:
    """A simulated payer's rules, read from one JSON file in ``payers/``."""

    payer_id: str
    name: str
    plan_type: str
    profile_version: str
    member_id_pattern: str
    allowed_percent_of_charge: int
    deductible_cents: int
    coinsurance_percent: int
    copay_cents: dict[str, int]
    out_of_pocket_max_cents: int | None
    timely_filing_days: int
    turnaround_days: int
    appeal_days: int
    authorization_required: tuple[str, ...]
    non_covered: dict[str, dict[str, Any]]
    no_cost_share: frozenset[str]
    self_pay: bool = False
    _member_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_member_re", re.compile(self.member_id_pattern))

    def member_id_valid(self, member_id: str) -> bool:
        """True when *member_id* has the shape of this payer's member ids."""
        return self._member_re.match(member_id) is not None

    @classmethod
    def from_file(cls, path: Path) -> PayerProfile:
        """Read and check one profile file; the error names the file and the field."""
        try:
            raw = json.loads(path.read_text())
            return cls(
                payer_id=raw["payer_id"],
                name=raw["name"],
                plan_type=raw["plan_type"],
                profile_version=raw["profile_version"],
                member_id_pattern=raw["member_id_pattern"],
                allowed_percent_of_charge=int(raw["allowed_percent_of_charge"]),
                deductible_cents=int(raw["deductible_cents"]),
                coinsurance_percent=int(raw["coinsurance_percent"]),
                copay_cents={k: int(v) for k, v in raw["copay_cents"].items()},
                out_of_pocket_max_cents=raw["out_of_pocket_max_cents"],
                timely_filing_days=int(raw["timely_filing_days"]),
                turnaround_days=int(raw["turnaround_days"]),
                appeal_days=int(raw["appeal_days"]),
                authorization_required=tuple(raw["authorization_required"]),
                non_covered=raw["non_covered"],
                no_cost_share=frozenset(raw["no_cost_share"]),
                self_pay=bool(raw.get("self_pay", False)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"payer profile {path.name}: bad or missing field {exc}") from exc


@dataclass(frozen=True)
class RefData:
    """All reference tables, as the stage functions receive them."""

    icd: Icd10Cm
    procedures: dict[str, ProcedureCode]
    charges_cents: dict[str, int]
    carc: dict[str, tuple[str, str]]
    rarc: dict[str, str]
    payers: dict[str, PayerProfile]
    ruleset_version: str = RULESET_VERSION

    def payer(self, payer_id: str) -> PayerProfile | None:
        """The profile of *payer_id*, or None when no profile is loaded for it."""
        return self.payers.get(payer_id)


def _rows(name: str) -> list[dict[str, str]]:
    with (REFDATA_DIR / name).open(newline="") as f:
        return list(csv.DictReader(f))


def load_payers(directory: Path = PAYERS_DIR) -> dict[str, PayerProfile]:
    """Every payer profile in *directory*, by payer id."""
    profiles = [PayerProfile.from_file(p) for p in sorted(directory.glob("*.json"))]
    return {p.payer_id: p for p in profiles}


@cache
def icd10cm() -> Icd10Cm:
    """The ICD-10-CM index, built once per process."""
    return Icd10Cm()


@cache
def load_refdata(payers_dir: Path = PAYERS_DIR) -> RefData:
    """All reference data, loaded once per process (per payers folder)."""
    procedures = {
        r["code"]: ProcedureCode(
            r["code"], r["code_set"], r["category"], int(r["max_units_per_day"])
        )
        for r in _rows("procedure_codes.csv")
    }
    return RefData(
        icd=icd10cm(),
        procedures=procedures,
        charges_cents={r["code"]: int(r["charge_cents"]) for r in _rows("chargemaster.csv")},
        carc={r["carc"]: (r["category"], r["wording"]) for r in _rows("carc.csv")},
        rarc={r["rarc"]: r["wording"] for r in _rows("rarc.csv")},
        payers=load_payers(payers_dir),
    )
