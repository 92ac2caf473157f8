"""X12 837P (005010X222A1) interchanges from Claim records.

Pure functions: :func:`interchange` renders the claims of one payer as one
ISA/GS/ST...SE/GE/IEA interchange, with control numbers given by the caller and
segment counts computed here. Amounts are written from integer cents; codes
without dots, as the implementation guide requires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processors.contracts.x12 import (
    COMPONENT,
    ELEMENT,
    SEGMENT,
    amount,
    clean,
    d8,
    envelope,
    parse_cents,
    parse_d8,
    seg,
)

Record = dict[str, Any]

VERSION = "005010X222A1"


@dataclass(frozen=True)
class Envelope:
    """Who sends and receives the interchange, and its control numbers."""

    sender_id: str
    receiver_id: str
    interchange_control: int
    group_control: int
    created: datetime
    submitter_name: str = "CLAIMS PIPELINE"
    submitter_contact: str = "BILLING OFFICE"
    submitter_phone: str = "8005550100"
    usage: str = "T"  # T test, P production


def _name(code: str, provider: Record) -> str:
    person = provider["entity_type"] == "1"
    return seg(
        "NM1",
        code,
        "1" if person else "2",
        clean(provider["name"]),
        clean(provider.get("first_name")) if person else "",
        "",
        "",
        "",
        "XX",
        provider["npi"],
    )


def _address(address: Record | None) -> list[str]:
    if not address:
        return []
    return [
        seg("N3", clean(address["line1"]), clean(address.get("line2"))),
        seg("N4", clean(address["city"]), address["state"], address["postal_code"]),
    ]


def _person(code: str, person: Record, id_qualifier: str = "", ident: str = "") -> list[str]:
    return [
        seg(
            "NM1",
            code,
            "1",
            clean(person["last_name"]),
            clean(person["first_name"]),
            "",
            "",
            "",
            id_qualifier,
            ident,
        ),
        *_address(person.get("address")),
        seg("DMG", "D8", d8(person["birth_date"]), person["sex"]),
    ]


def claim_segments(claim: Record) -> list[str]:
    """Loop 2300 and its service lines (2400) for one claim."""
    freq = claim["frequency_code"]
    out = [
        seg(
            "CLM",
            claim["claim_id"],
            amount(claim["total_charge_cents"]),
            "",
            "",
            COMPONENT.join((claim["place_of_service"], "B", freq)),
            "Y",
            "A",
            "Y",
            "Y",
        )
    ]
    if freq in ("7", "8") and claim.get("payer_claim_control_number"):
        out.append(seg("REF", "F8", claim["payer_claim_control_number"]))
    if claim.get("authorization_number"):
        out.append(seg("REF", "G1", clean(claim["authorization_number"])))
    if claim.get("referral_number"):
        out.append(seg("REF", "9F", clean(claim["referral_number"])))
    codes = claim["diagnoses"]
    out.append(
        seg(
            "HI",
            *(COMPONENT.join(("ABK" if i == 0 else "ABF", code)) for i, code in enumerate(codes)),
        )
    )
    if claim.get("referring_provider"):
        out.append(_name("DN", claim["referring_provider"]))
    rendering = claim["rendering_provider"]
    out.append(_name("82", rendering))
    if rendering.get("taxonomy"):
        out.append(seg("PRV", "PE", "PXC", rendering["taxonomy"]))
    for line in claim["lines"]:
        procedure = COMPONENT.join(("HC", line["procedure_code"], *line["modifiers"]))
        pointers = COMPONENT.join(str(p) for p in line["dx_pointers"])
        out.extend(
            [
                seg("LX", line["line_number"]),
                seg(
                    "SV1",
                    procedure,
                    amount(line["charge_cents"]),
                    "UN",
                    line["units"],
                    "",
                    "",
                    pointers,
                ),
                seg("DTP", "472", "D8", d8(line["service_date"])),
            ]
        )
    return out


def transaction(claims: list[Record], control: str, env: Envelope) -> list[str]:
    """One ST...SE 837P transaction: billing provider, subscribers, patients, claims."""
    body = [
        seg("ST", "837", control, VERSION),
        seg(
            "BHT",
            "0019",
            "00",
            f"{env.group_control}{control}",
            d8(env.created.date()),
            env.created.strftime("%H%M"),
            "CH",
        ),
        seg("NM1", "41", "2", clean(env.submitter_name), "", "", "", "", "46", env.sender_id),
        seg("PER", "IC", clean(env.submitter_contact), "TE", env.submitter_phone),
        seg(
            "NM1", "40", "2", clean(claims[0]["payer_name"]), "", "", "", "", "46", env.receiver_id
        ),
    ]
    hl = 0
    by_billing: dict[str, list[Record]] = {}
    for claim in claims:
        by_billing.setdefault(claim["billing_provider"]["npi"], []).append(claim)
    for group in by_billing.values():
        hl += 1
        billing_hl = hl
        billing = group[0]["billing_provider"]
        body.append(seg("HL", billing_hl, "", "20", "1"))
        if billing.get("taxonomy"):
            body.append(seg("PRV", "BI", "PXC", billing["taxonomy"]))
        body.append(_name("85", billing))
        body.extend(_address(billing.get("address")))
        body.append(seg("REF", "EI", billing["tin"]))
        for claim in group:
            hl += 1
            dependent = claim["relationship"] != "18"
            body.append(seg("HL", hl, billing_hl, "22", "1" if dependent else "0"))
            body.append(
                seg(
                    "SBR",
                    "P",
                    "" if dependent else "18",
                    clean(claim.get("group_number")),
                    "",
                    "",
                    "",
                    "",
                    "",
                    claim["plan_type"],
                )
            )
            body.extend(_person("IL", claim["subscriber"], "MI", claim["member_id"]))
            body.append(
                seg(
                    "NM1",
                    "PR",
                    "2",
                    clean(claim["payer_name"]),
                    "",
                    "",
                    "",
                    "",
                    "PI",
                    claim["payer_id"],
                )
            )
            if dependent:
                hl += 1
                body.append(seg("HL", hl, hl - 1, "23", "0"))
                body.append(seg("PAT", claim["relationship"]))
                body.extend(_person("QC", claim["patient"]))
            body.extend(claim_segments(claim))
    body.append(seg("SE", len(body) + 1, control))
    return body


def interchange(claims: Iterable[Record], env: Envelope, per_transaction: int = 500) -> str:
    """An ISA/GS interchange holding *claims* (one payer) in 837P transactions."""
    claims = list(claims)
    if not claims:
        raise ValueError("an interchange needs at least one claim")
    transactions = [
        transaction(claims[start : start + per_transaction], f"{number:04d}", env)
        for number, start in enumerate(range(0, len(claims), per_transaction), start=1)
    ]
    return envelope(
        "HC", VERSION, env.sender_id, env.receiver_id, env.interchange_control,
        env.group_control, env.created, env.usage, transactions,
    )  # fmt: skip


def parse_837p(text: str) -> list[Record]:
    """Read the claims back out of an 837P interchange (the fields this module writes).

    Each claim is a dict shaped like the Claim record's corresponding fields, for
    round-trip checks and for reading interchanges from other systems.
    """
    claims: list[Record] = []
    billing: Record = {}
    subscriber: Record = {}
    payer: Record = {}
    patient: Record | None = None
    relationship = "18"
    claim: Record | None = None
    entity: Record | None = None
    for raw in text.strip().rstrip(SEGMENT).split(SEGMENT):
        e = raw.strip().split(ELEMENT)
        tag = e[0]
        if tag == "HL":
            level = e[3]
            if level == "22":
                patient, relationship, subscriber = None, "18", {}
        elif tag == "SBR":
            subscriber.update(group_number=e[3] or None, plan_type=e[9])
        elif tag == "NM1":
            person = {
                "npi": e[9] if len(e) > 9 and e[8] == "XX" else None,
                "entity_type": e[2],
                "name": e[3],
                "first_name": e[4] if len(e) > 4 and e[4] else None,
            }
            code = e[1]
            if code == "85":
                billing = person
                entity = billing
            elif code == "IL":
                subscriber.update(last_name=e[3], first_name=e[4], member_id=e[9])
                entity = subscriber
            elif code == "PR":
                payer = {"payer_name": e[3], "payer_id": e[9]}
            elif code == "QC":
                patient = {"last_name": e[3], "first_name": e[4]}
                entity = patient
            elif code in ("82", "DN") and claim is not None:
                claim["rendering_provider" if code == "82" else "referring_provider"] = person
        elif tag == "N4" and entity is not None:
            entity["postal_code"] = e[3]
        elif tag == "REF" and e[1] == "EI":
            billing["tin"] = e[2]
        elif tag == "DMG" and entity is not None:
            entity.update(birth_date=parse_d8(e[2]), sex=e[3])
        elif tag == "PAT":
            relationship = e[1]
        elif tag == "CLM":
            pos, _, freq = e[5].split(COMPONENT)
            claim = {
                "claim_id": e[1],
                "total_charge_cents": parse_cents(e[2]),
                "place_of_service": pos,
                "frequency_code": freq,
                "payer_claim_control_number": None,
                "authorization_number": None,
                "referral_number": None,
                "referring_provider": None,
                "lines": [],
                "billing_provider": billing,
                "subscriber": dict(subscriber),
                "patient": dict(patient or subscriber),
                "relationship": relationship,
                "member_id": subscriber.get("member_id"),
                **payer,
                "group_number": subscriber.get("group_number"),
                "plan_type": subscriber.get("plan_type"),
            }
            claims.append(claim)
        elif tag == "REF" and claim is not None and e[1] in ("F8", "G1", "9F"):
            field = {
                "F8": "payer_claim_control_number",
                "G1": "authorization_number",
                "9F": "referral_number",
            }[e[1]]
            claim[field] = e[2]
        elif tag == "HI" and claim is not None:
            claim["diagnoses"] = [c.split(COMPONENT)[1] for c in e[1:]]
        elif tag == "SV1" and claim is not None:
            parts = e[1].split(COMPONENT)
            claim["lines"].append(
                {
                    "procedure_code": parts[1],
                    "modifiers": parts[2:],
                    "charge_cents": parse_cents(e[2]),
                    "units": int(e[4]),
                    "dx_pointers": [int(p) for p in e[7].split(COMPONENT)],
                }
            )
        elif tag == "DTP" and e[1] == "472" and claim is not None and claim["lines"]:
            claim["lines"][-1]["service_date"] = parse_d8(e[3])
    return claims
