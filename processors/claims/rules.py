"""Claim assembly and the front-end scrubber.

Pure functions only. :func:`build_claim` turns a coded encounter into an
837P-shaped Claim priced from the practice's chargemaster, then scrubs it the
way a clearinghouse would before it reaches a payer. A claim that fails a hard
scrubber edit is held for the billing queue and never submitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processors.contracts.claim import SELF_PAY_ID
from processors.contracts.findings import HARD, SOFT, finding
from processors.contracts.records import CodingFinding
from processors.ids import claim_id_for
from processors.npi import is_valid_npi
from processors.refdata import PROCEDURE_CODES_VERSION, RefData

Record = dict[str, Any]

SCRUBBER_VERSION = "scrubber-1"
MAX_LINES = 50  # service lines per 837P claim (loop 2400 repeats at most 50 times)


@dataclass(frozen=True)
class ClaimResult:
    """The claims built for one coded encounter (more than one past 50 lines), and findings."""

    claims: list[Record]
    findings: list[CodingFinding] = field(default_factory=list)

    @property
    def claim(self) -> Record:
        """The first (usually the only) claim."""
        return self.claims[0]

    @property
    def held(self) -> bool:
        """True when a hard scrubber edit holds the claim for billing staff."""
        return any(f["severity"] == HARD for f in self.findings)


def scrub(claim: Record, refdata: RefData) -> list[CodingFinding]:
    """Front-end edits: NPIs, required fields, totals, pointers and the payer."""
    out: list[CodingFinding] = []
    for role in ("billing_provider", "rendering_provider", "referring_provider"):
        provider = claim.get(role)
        if provider is not None and not is_valid_npi(provider["npi"]):
            out.append(
                finding(
                    "SCRUB-NPI",
                    HARD,
                    None,
                    f"The {role.replace('_', ' ')}'s NPI fails the check digit; correct it in the "
                    "provider master file.",
                    SCRUBBER_VERSION,
                )
            )
    billing = claim["billing_provider"]
    address = billing.get("address") or {}
    zip_code = str(address.get("postal_code") or "")
    if not billing.get("tin") or not address or not (len(zip_code) == 9 and zip_code.isdigit()):
        out.append(
            finding(
                "SCRUB-BILLING-PROVIDER",
                HARD,
                None,
                "The billing provider needs a tax id and an address with the full nine-digit ZIP "
                "code on an 837P (loop 2010AA).",
                SCRUBBER_VERSION,
            )
        )
    out.extend(_required_fields(claim))
    out.extend(_dates(claim))
    payer = refdata.payer(claim["payer_id"])
    if payer is not None:
        missing = [f for f in payer.required_claim_fields if not claim.get(f)]
        if missing:
            out.append(
                finding(
                    "SCRUB-PAYER-FIELDS",
                    HARD,
                    None,
                    f"{payer.name} requires {', '.join(missing)} on its claims; add it from the "
                    "insurance card or the registration.",
                    f"{SCRUBBER_VERSION}|{payer.payer_id}@{payer.profile_version}",
                )
            )
    if claim["payer_id"] != SELF_PAY_ID and refdata.payer(claim["payer_id"]) is None:
        out.append(
            finding(
                "SCRUB-PAYER",
                HARD,
                None,
                f"Payer {claim['payer_id']} is not in the payer list; fix the coverage on the "
                "registration, or route the payer to a payer profile in "
                "processors/refdata/payer_directory.csv.",
                SCRUBBER_VERSION,
            )
        )
    for line in claim["lines"]:
        if line["charge_cents"] <= 0:
            out.append(
                finding(
                    "SCRUB-CHARGE",
                    HARD,
                    line["procedure_code"],
                    f"Line {line['line_number']}: no charge for {line['procedure_code']} in the "
                    "chargemaster; add a price before billing it.",
                    PROCEDURE_CODES_VERSION,
                )
            )
        if any(p < 1 or p > len(claim["diagnoses"]) for p in line["dx_pointers"]):
            out.append(
                finding(
                    "SCRUB-DX-POINTER",
                    HARD,
                    line["procedure_code"],
                    f"Line {line['line_number']}: a diagnosis pointer is outside 1-"
                    f"{len(claim['diagnoses'])}.",
                    SCRUBBER_VERSION,
                )
            )
    if claim["total_charge_cents"] != sum(line["charge_cents"] for line in claim["lines"]):
        out.append(
            finding(
                "SCRUB-TOTAL",
                HARD,
                None,
                "The claim total does not equal the sum of its lines.",
                SCRUBBER_VERSION,
            )
        )
    return out


def _required_fields(claim: Record) -> list[CodingFinding]:
    """Fields the 837P requires for the subscriber and patient loops."""
    missing = []
    for role in ("subscriber", "patient"):
        person = claim[role]
        for name in ("last_name", "first_name", "birth_date"):
            if not person.get(name):
                missing.append(f"{role} {name.replace('_', ' ')}")
        if person.get("sex") not in ("F", "M", "U"):
            missing.append(f"{role} sex (F, M or U)")
    if not str(claim.get("member_id") or "").strip():
        missing.append("member id")
    if claim["relationship"] == "18" and not claim["subscriber"].get("address"):
        missing.append("subscriber address")
    if not claim["lines"]:
        missing.append("at least one service line")
    if not missing:
        return []
    return [
        finding(
            "SCRUB-REQUIRED",
            HARD,
            None,
            "The 837P requires: " + ", ".join(missing) + "; complete the registration.",
            SCRUBBER_VERSION,
        )
    ]


def _dates(claim: Record) -> list[CodingFinding]:
    """Service dates in order, within the claim's period and not after it was filed."""
    start, end = claim["service_date_from"], claim["service_date_to"]
    filed = claim["created_at"].date()
    problems = []
    if start > end:
        problems.append("the claim's service period ends before it starts")
    if end > filed:
        problems.append("a service date is after the date the claim was created")
    if any(not start <= line["service_date"] <= end for line in claim["lines"]):
        problems.append("a line's date of service is outside the claim's service period")
    if not problems:
        return []
    return [
        finding("SCRUB-DATES", HARD, None, "; ".join(problems).capitalize() + ".", SCRUBBER_VERSION)
    ]


def _line_charge(line: Record, refdata: RefData, findings: list[CodingFinding]) -> int:
    """The line's charge: the EHR's when it sent one, else the chargemaster's price x units.

    An EHR charge that differs from the chargemaster is billed as sent, with a
    SOFT finding that names both amounts.
    """
    listed = int(refdata.charges_cents.get(line["procedure_code"], 0)) * int(line["units"])
    sent = line.get("charge_cents")
    if sent is None:
        return listed
    if listed and sent != listed:
        findings.append(
            finding(
                "SCRUB-CHARGE-DIFFERS",
                SOFT,
                line["procedure_code"],
                f"Line {line['line_number']}: the EHR's charge ${sent / 100:,.2f} differs from "
                f"the chargemaster's ${listed / 100:,.2f} for {line['units']} unit(s) of "
                f"{line['procedure_code']}; the EHR's charge is billed.",
                PROCEDURE_CODES_VERSION,
            )
        )
    return int(sent)


def build_claim(coded: Record, refdata: RefData) -> ClaimResult:
    """Assemble an original (frequency 1) claim for *coded* and scrub it."""
    enc = coded["encounter"]
    coverage = enc.get("coverage")
    patient = enc["patient"]
    lines = []
    charge_findings: list[CodingFinding] = []
    for line in coded["lines"]:
        charge = _line_charge(line, refdata, charge_findings)
        lines.append(
            {
                "line_number": line["line_number"],
                "procedure_code": line["procedure_code"],
                "modifiers": list(line["modifiers"]),
                "charge_cents": charge,
                "units": line["units"],
                "place_of_service": enc["place_of_service"],
                "dx_pointers": list(line["dx_pointers"]),
                "service_date": enc["service_date"],
            }
        )
    if coverage is not None:
        payer_id, payer_name, plan_type = (
            coverage["payer_id"],
            coverage["payer_name"],
            coverage["plan_type"],
        )
        subscriber, relationship, member_id = (
            coverage["subscriber"],
            coverage["relationship"],
            coverage["member_id"],
        )
        group = coverage.get("group_number")
        effective, terminated = coverage["effective_date"], coverage.get("termination_date")
    else:
        payer_id, payer_name, plan_type = SELF_PAY_ID, "Self-pay", "ZZ"
        subscriber, relationship, member_id = patient, "18", patient["person_id"]
        group, effective, terminated = None, None, None
    claim = {
        "claim_id": claim_id_for(enc["encounter_id"]),
        "encounter_id": enc["encounter_id"],
        "event_id": coded["event_id"],
        "frequency_code": "1",
        "original_claim_id": None,
        "payer_claim_control_number": None,
        "created_at": enc["received_at"],
        "billing_provider": enc["billing_provider"],
        "rendering_provider": enc["rendering_provider"],
        "referring_provider": enc.get("referring_provider"),
        "subscriber": subscriber,
        "patient": patient,
        "relationship": relationship,
        "member_id": member_id,
        "group_number": group,
        "payer_id": payer_id,
        "payer_name": payer_name,
        "plan_type": plan_type,
        "place_of_service": enc["place_of_service"],
        "service_date_from": enc["service_date"],
        "service_date_to": enc["service_date"],
        "diagnoses": list(coded["diagnoses"]),
        "lines": lines,
        "total_charge_cents": sum(line["charge_cents"] for line in lines),
        "authorization_number": enc.get("authorization_number"),
        "referral_number": enc.get("referral_number"),
        "coverage_effective_date": effective,
        "coverage_termination_date": terminated,
        "other_coverages": list(enc.get("other_coverages") or []),
        "resubmission": 0,
        "findings": list(coded.get("findings", [])) + charge_findings,
        "ruleset_version": coded["ruleset_version"],
    }
    claims = split_claim(claim)
    found: list[CodingFinding] = []
    for part in claims:
        part_findings = scrub(part, refdata)
        part["findings"] = part["findings"] + [f for f in part_findings if f["severity"] != HARD]
        found.extend(f for f in part_findings if f not in found)
    return ClaimResult(claims=claims, findings=found)


def split_claim(claim: Record) -> list[Record]:
    """Split a claim past 50 service lines (the 837P limit) into claims of up to 50.

    Each part keeps only the diagnoses its lines point at (remapped pointers,
    principal first) and gets its own deterministic claim id.
    """
    lines = claim["lines"]
    if len(lines) <= MAX_LINES:
        return [claim]
    parts = []
    for seq, start in enumerate(range(0, len(lines), MAX_LINES), start=1):
        chunk = lines[start : start + MAX_LINES]
        used = sorted({p for line in chunk for p in line["dx_pointers"]})
        remap = {old: new for new, old in enumerate(used, start=1)}
        part_lines = [
            {**line, "line_number": n, "dx_pointers": [remap[p] for p in line["dx_pointers"]]}
            for n, line in enumerate(chunk, start=1)
        ]
        parts.append(
            {
                **claim,
                "claim_id": claim_id_for(claim["encounter_id"], claim["frequency_code"], seq),
                "diagnoses": [claim["diagnoses"][p - 1] for p in used],
                "lines": part_lines,
                "total_charge_cents": sum(line["charge_cents"] for line in part_lines),
                "findings": list(claim["findings"]),
            }
        )
    return parts
