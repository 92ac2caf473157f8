"""Small helpers of the simulation, and the pieces of an EncounterEvent it builds."""

from __future__ import annotations

import random
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.ingest.synthetic.parameters import (
    COMMERCIAL,
    MEDICARE,
    OTHER_BASIS_LOWER_SHARE,
    Record,
)
from pipeline.ingest.synthetic.people import (
    DIGITS,
    MBI_LETTERS,
    Address,
    Clinician,
    Coverage,
    Person,
)
from pipeline.ingest.synthetic.scenarios import (
    BOTH,
    CODED_WITH,
    MDM_ONLY,
    NEITHER,
    TIME_ONLY,
    VISIT_FAMILY_OF,
    VISIT_MDM,
    VISIT_MINUTES,
)
from processors.refdata import (
    PayerProfile,
)

# --- Small helpers --------------------------------------------------------------


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(DIGITS, k=n))


def _business_days(start: date, span: int) -> list[date]:
    days = (start + timedelta(days=n) for n in range(span))
    return [d for d in days if d.weekday() < 5]


def _received_at(rng: random.Random, service_date: date, delay_days: int) -> datetime:
    """A business hour (13:00-21:59 UTC, the practice's 8 to 5) *delay_days* later."""
    day = service_date + timedelta(days=delay_days)
    if day.weekday() >= 5:
        day += timedelta(days=7 - day.weekday())
    return datetime(
        day.year,
        day.month,
        day.day,
        rng.randint(13, 21),
        rng.randint(0, 59),
        rng.randint(0, 59),
        tzinfo=UTC,
    )


def _mbi(rng: random.Random) -> str:
    """A Medicare Beneficiary Identifier in the CMS format."""
    alnum = MBI_LETTERS + DIGITS
    return "".join(
        (
            rng.choice("123456789"),
            rng.choice(MBI_LETTERS),
            rng.choice(alnum),
            rng.choice(DIGITS),
            rng.choice(MBI_LETTERS),
            rng.choice(alnum),
            rng.choice(DIGITS),
            rng.choice(MBI_LETTERS),
            rng.choice(MBI_LETTERS),
            _digits(rng, 2),
        )
    )


def _mistyped_member_id(rng: random.Random, payer_id: str, member_id: str) -> str:
    """*member_id* as front-desk staff mistype it, no longer in the payer's format."""
    if payer_id == MEDICARE:
        if rng.random() < 0.5:
            return f"{_digits(rng, 9)}A"  # the retired HICN, an SSN-based number
        return member_id[:3] + "O" + member_id[4:]  # the letter O keyed for the fourth digit
    position = rng.randrange(len(member_id) - 9, len(member_id))  # one of the last nine digits
    if payer_id in COMMERCIAL and rng.random() < 0.5:
        return member_id[:position] + "O" + member_id[position + 1 :]
    return member_id[:position] + member_id[position + 1 :]  # the digit dropped


def _clone(value: Any) -> Any:
    """A deep copy of a record of dicts, lists and immutable values."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


def _comorbidities(conditions: tuple[str, ...], diagnoses: list[str]) -> list[str]:
    """Up to two other chronic conditions, none in a category already coded, four codes in all.

    A condition comes with the codes always coded beside it, or not at all.
    """
    categories = {code[:3] for code in diagnoses}
    extra: list[str] = []
    added = 0
    for code in conditions:
        if added == 2:
            break
        codes = (code, *CODED_WITH.get(code, ()))
        if code[:3] in categories or len(diagnoses) + len(extra) + len(codes) > 4:
            continue
        extra += codes
        added += 1
    return extra


def _documentation(
    rng: random.Random, code: str, kind: str, undercoded: bool = False
) -> tuple[int | None, str | None]:
    """Total minutes and MDM that a note of *kind* documents for office visit *code*.

    What is documented supports *code*; with both documented, one sometimes supports
    a lower level (the visit was leveled on the other). An *undercoded* note supports
    the next level up.
    """
    if kind == NEITHER:
        return None, None
    family = VISIT_FAMILY_OF[code]
    at = family.index(code)
    if undercoded and at + 1 < len(family):
        at += 1
    by_time = by_mdm = family[at]
    if kind == BOTH and at > 0 and rng.random() < OTHER_BASIS_LOWER_SHARE:
        if rng.random() < 0.5:
            by_time = family[at - 1]
        else:
            by_mdm = family[at - 1]
    minutes = rng.randint(*VISIT_MINUTES[by_time]) if kind != MDM_ONLY else None
    mdm = VISIT_MDM[by_mdm] if kind != TIME_ONLY else None
    return minutes, mdm


def _preventive_code(age: int, new: bool) -> str:
    if age < 1:
        return "99391"
    if age < 5:
        return "99392"
    if age < 40:
        return "99385" if new else "99395"
    return "99386" if new else "99396"


# --- Records --------------------------------------------------------------------


def _address_record(address: Address) -> Record:
    return asdict(address)


def _person_record(person: Person) -> Record:
    # Person's fields are the claims.Person record's, its address included.
    return asdict(person)


def _coverage_record(coverage: Coverage, payer: PayerProfile) -> Record:
    return {
        "payer_id": coverage.payer_id,
        "payer_name": payer.name,
        "plan_type": payer.plan_type,
        "member_id": coverage.member_id,
        "group_number": coverage.group_number,
        "relationship": coverage.relationship,
        "subscriber": _person_record(coverage.subscriber),
        "effective_date": coverage.effective_date,
        "termination_date": None,
    }


def _clinician_record(clinician: Clinician) -> Record:
    return {
        "npi": clinician.npi,
        "entity_type": "1",
        "name": clinician.last_name,
        "first_name": clinician.first_name,
        "taxonomy": clinician.taxonomy,
        "tin": None,
        "address": None,
    }


def _procedure(
    code: str, refs: list[int], units: int = 1, modifiers: list[str] | None = None
) -> Record:
    return {
        "code": code,
        "modifiers": modifiers or [],
        "units": units,
        "diagnosis_refs": refs,
        "charge_cents": None,  # the chargemaster prices the synthetic practice's services
    }
