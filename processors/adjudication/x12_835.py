"""X12 835 (005010X221A1) remittance advice from Remittance records, and back.

Pure functions. :func:`write_835` renders the remittances of each payer as one
ISA/GS interchange holding one ST...SE transaction per payment: the claims one
payer pays one payee on one date under one EFT trace or check number.
:func:`parse_835` reads an 835 back into Remittance-shaped dicts, for
round-trip checks and for ingesting payers' files. Amounts are integer cents in
the records and X12 decimals in the text.

Both directions enforce the guide's balancing and raise ValueError naming the
claim (never the patient) that breaks it:

- each service line: SVC02 charge - the line's CAS amounts = SVC03 payment;
- each claim: CLP03 charge - claim CAS - line CAS = CLP04 payment;
- each transaction: BPR02 = sum of CLP04 - sum of PLB amounts.

An 835 cannot pay less than zero. When a transaction's claims add up to a
negative amount (a reversal taking back more than the same payment pays), the
writer adds a PLB forwarding balance (PLB03-1 FB, referenced by the trace
number) of that negative amount, so BPR02 is 0 and BPR01 is H (notification
only). The payer recovers the balance in a later payment with a positive FB;
carrying it there is the payer's ledger, which the Remittance records do not
hold.

The reference data has no payer TIN and no bank accounts. TRN03 and BPR10
("1" followed by the payer's EIN) and the ACH routing and account numbers are
therefore fictitious and deterministic: EINs with prefix 00, which the IRS does
not assign, and routing numbers with prefix 5, which no Federal Reserve
district uses, each with a valid ABA check digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from processors.contracts.claim import SELF_PAY_ID
from processors.contracts.x12 import (
    COMPONENT,
    Record,
    amount,
    clean,
    d8,
    envelope,
    parse_cents,
    parse_d8,
    seg,
)
from processors.ids import stable_id
from processors.refdata import PayerProfile

VERSION = "005010X221A1"
REVERSAL = "22"
# CAS01 group codes the guide allows; CR was withdrawn in 5010.
GROUP_CODES = ("CO", "OA", "PI", "PR")
CAS_TRIPLES = 6  # adjustment (reason, amount, quantity) triples one CAS segment holds
MOA_REMARKS = 5  # MOA03..MOA07
FORWARDING_BALANCE = "FB"
PAYMENT_METHODS = ("ACH", "CHK", "NON")
CLAIM_DATES = {"232": "service_date_from", "233": "service_date_to", "050": "payer_received_date"}


def _digits(count: int, *parts: object) -> str:
    """*count* decimal digits fixed by *parts*."""
    return f"{int(stable_id('', *parts, length=16), 16) % 10**count:0{count}d}"


def payer_tin(payer_id: str) -> str:
    """A fictitious EIN for *payer_id* (prefix 00 is never assigned)."""
    return "00" + _digits(7, "payer-tin", payer_id)


def routing_number(*parts: object) -> str:
    """A fictitious ABA routing number: prefix 5 (unassigned), valid check digit."""
    body = "5" + _digits(7, "routing", *parts)
    weights = (3, 7, 1, 3, 7, 1, 3, 7)
    check = -sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 10
    return body + str(check)


def account_number(*parts: object) -> str:
    """A fictitious 12-digit deposit account number."""
    return _digits(12, "account", *parts)


@dataclass
class Payment:
    """One ST...SE transaction: what one payer pays one payee on one date under one trace."""

    payer: PayerProfile
    payee: Record
    paid_on: date
    trace: str
    method: str
    claims: list[Record] = field(default_factory=list)

    @property
    def claims_total(self) -> int:
        """Sum of CLP04 over the transaction's claims."""
        return sum(r["paid_cents"] for r in self.claims)

    @property
    def forwarding_balance(self) -> int:
        """PLB FB amount that keeps BPR02 from going below zero (0 when not needed)."""
        return min(self.claims_total, 0)

    @property
    def total(self) -> int:
        """BPR02: claim payments less provider-level adjustments."""
        return self.claims_total - self.forwarding_balance


def check_balance(remit: Record) -> None:
    """Raise ValueError, naming the claim, unless its lines and the claim balance."""
    claim_id = remit["claim_id"]
    line_adjusted = 0
    for line in remit["lines"]:
        adjusted = sum(a["amount_cents"] for a in line["adjustments"])
        if line["charge_cents"] - adjusted != line["paid_cents"]:
            raise ValueError(
                f"claim {claim_id} line {line.get('line_number')}: charge "
                f"{amount(line['charge_cents'])} - adjustments {amount(adjusted)} "
                f"!= paid {amount(line['paid_cents'])}"
            )
        line_adjusted += adjusted
    claim_adjusted = sum(a["amount_cents"] for a in remit["claim_adjustments"])
    if remit["total_charge_cents"] - claim_adjusted - line_adjusted != remit["paid_cents"]:
        raise ValueError(
            f"claim {claim_id}: charge {amount(remit['total_charge_cents'])} - claim "
            f"adjustments {amount(claim_adjusted)} - line adjustments {amount(line_adjusted)} "
            f"!= paid {amount(remit['paid_cents'])}"
        )


def _cas(claim_id: str, adjustments: list[Record]) -> list[str]:
    """CAS segments: one group code per segment, up to six reason/amount triples each."""
    by_group: dict[str, list[Record]] = {}
    for adj in adjustments:
        if adj["group_code"] not in GROUP_CODES:
            raise ValueError(
                f"claim {claim_id}: CAS group code {adj['group_code']!r} is not "
                f"one of {', '.join(GROUP_CODES)}"
            )
        by_group.setdefault(adj["group_code"], []).append(adj)
    out = []
    for group, items in by_group.items():
        for start in range(0, len(items), CAS_TRIPLES):
            triples: list[str] = []
            for adj in items[start : start + CAS_TRIPLES]:
                triples += [adj["carc"], amount(adj["amount_cents"]), ""]
            out.append(seg("CAS", group, *triples))
    return out


def _person(code: str, person: Record | None, member_id: str | None) -> str:
    person = person or {}
    return seg(
        "NM1",
        code,
        "1",
        clean(person.get("last_name")),
        clean(person.get("first_name")),
        "",
        "",
        "",
        "MI" if member_id else "",
        member_id or "",
    )


def claim_segments(remit: Record, payee_npi: str) -> list[str]:
    """Loop 2100 (CLP) and its service payments (2110) for one remittance."""
    claim_id = remit["claim_id"]
    check_balance(remit)
    if not remit.get("payer_claim_control_number"):
        raise ValueError(f"claim {claim_id}: CLP07 needs the payer claim control number")
    rarcs = remit["rarcs"]
    if len(rarcs) > MOA_REMARKS:
        raise ValueError(
            f"claim {claim_id}: {len(rarcs)} claim remark codes; MOA holds {MOA_REMARKS}"
        )
    patient_share = remit["patient_responsibility_cents"]
    out = [
        seg(
            "CLP",
            claim_id,
            remit["claim_status_code"],
            amount(remit["total_charge_cents"]),
            amount(remit["paid_cents"]),
            amount(patient_share) if patient_share else "",
            remit["plan_type"],
            remit["payer_claim_control_number"],
            remit.get("place_of_service") or "",
            remit.get("frequency_code") or "",
        )
    ]
    out += _cas(claim_id, remit["claim_adjustments"])
    subscriber = remit.get("subscriber")
    member_id = remit.get("member_key")
    # The member id belongs to the insured: on NM1*IL when the patient is a dependent.
    out.append(_person("QC", remit.get("patient"), None if subscriber else member_id))
    if subscriber:
        out.append(_person("IL", subscriber, member_id))
    rendering = remit.get("rendering_npi")
    if rendering and rendering != payee_npi:
        provider = remit.get("rendering_provider") or {}
        entity = provider.get("entity_type") or "1"
        out.append(
            seg(
                "NM1",
                "82",
                entity,
                clean(provider.get("name")),
                clean(provider.get("first_name")) if entity == "1" else "",
                "",
                "",
                "",
                "XX",
                rendering,
            )
        )
    if rarcs:
        out.append(seg("MOA", "", "", *rarcs))
    if remit.get("original_payer_claim_control_number"):
        out.append(seg("REF", "F8", remit["original_payer_claim_control_number"]))
    first, last = remit.get("service_date_from"), remit.get("service_date_to")
    if first:
        out.append(seg("DTM", "232", d8(first)))
    if last:
        out.append(seg("DTM", "233", d8(last)))
    if remit.get("payer_received_date"):
        out.append(seg("DTM", "050", d8(remit["payer_received_date"])))
    # A line without its own date takes the claim's, when the claim covers one day.
    one_day = first if first and first == (last or first) else None
    for line in remit["lines"]:
        line_date = line.get("service_date") or one_day
        procedure = COMPONENT.join(("HC", line["procedure_code"], *line["modifiers"]))
        out.append(
            seg(
                "SVC",
                procedure,
                amount(line["charge_cents"]),
                amount(line["paid_cents"]),
                "",
                line["units"],
            )
        )
        if line_date:
            out.append(seg("DTM", "472", d8(line_date)))
        out += _cas(claim_id, line["adjustments"])
        out.append(seg("REF", "6R", line["line_number"]))
        out.append(seg("AMT", "B6", amount(line["allowed_cents"])))
        out += [seg("LQ", "HE", rarc) for rarc in line["rarcs"]]
    return out


def _address(address: Mapping[str, str | None] | None) -> list[str]:
    if not address:
        return []
    return [
        seg("N3", clean(address["line1"]), clean(address.get("line2"))),
        seg("N4", clean(address["city"]), address["state"], address["postal_code"]),
    ]


def _bpr(payment: Payment) -> str:
    total = payment.total
    if total == 0:
        return seg("BPR", "H", "0", "C", "NON", *[""] * 11, d8(payment.paid_on))
    if payment.method == "NON":
        raise ValueError(
            f"claim {payment.claims[0]['claim_id']}: payment method NON in a "
            f"payment of {amount(total)}"
        )
    if payment.method == "ACH":
        payer_id, npi = payment.payer.payer_id, payment.payee["npi"]
        return seg(
            "BPR",
            "I",
            amount(total),
            "C",
            "ACH",
            "CCP",
            "01",
            routing_number(payer_id),
            "DA",
            account_number(payer_id),
            "1" + payer_tin(payer_id),
            "",
            "01",
            routing_number(npi),
            "DA",
            account_number(npi),
            d8(payment.paid_on),
        )
    return seg("BPR", "I", amount(total), "C", payment.method, *[""] * 11, d8(payment.paid_on))


def transaction(payment: Payment, control: str) -> list[str]:
    """One ST...SE 835 transaction for *payment*."""
    payer, payee = payment.payer, payment.payee
    if not payer.address:
        raise ValueError(f"payer {payer.payer_id}: the 835 needs the payer's address (N3/N4)")
    body = [
        seg("ST", "835", control),  # ST03 is not used in this guide
        _bpr(payment),
        seg("TRN", "1", payment.trace, "1" + payer_tin(payer.payer_id)),
        seg("DTM", "405", d8(payment.paid_on)),  # produced the day the payment is made
        seg("N1", "PR", clean(payer.name)),
        *_address(payer.address),
        seg("REF", "2U", payer.payer_id),
        seg("PER", "BL", "EDI SUPPORT", "TE" if payer.contact_phone else "", payer.contact_phone),
        seg(
            "N1",
            "PE",
            clean(" ".join(filter(None, (payee.get("first_name"), payee["name"])))),
            "XX",
            payee["npi"],
        ),
        *_address(payee.get("address")),
    ]
    if payee.get("tin"):
        body.append(seg("REF", "TJ", payee["tin"]))
    body.append(seg("LX", "1"))
    for remit in payment.claims:
        body += claim_segments(remit, payee["npi"])
    if payment.forwarding_balance:
        body.append(
            seg(
                "PLB",
                payee["npi"],
                f"{payment.paid_on.year}1231",
                COMPONENT.join((FORWARDING_BALANCE, payment.trace)),
                amount(payment.forwarding_balance),
            )
        )
    body.append(seg("SE", len(body) + 1, control))
    return body


def _claim_order(remit: Record) -> tuple[str, bool, str]:
    # A reversal comes right before the payment of the claim that replaced it.
    answered = remit.get("in_response_to") or remit["claim_id"]
    return answered, remit["claim_status_code"] != REVERSAL, remit["claim_id"]


def payments(
    remittances: Iterable[Record], payers: Mapping[str, PayerProfile]
) -> dict[str, list[Payment]]:
    """The remittances sent to payees, grouped into payments, by payer id (self-pay left out)."""
    grouped: dict[tuple[str, str, date, str], Payment] = {}
    for remit in remittances:
        claim_id = remit["claim_id"]
        if remit["payer_id"] == SELF_PAY_ID:
            continue
        payer = payers.get(remit["payer_id"])
        if payer is None:
            raise ValueError(f"claim {claim_id}: payer {remit['payer_id']!r} has no profile")
        if payer.self_pay:
            continue
        payee = remit.get("payee")
        if not payee:
            raise ValueError(f"claim {claim_id}: the 835 needs the payee (N1*PE)")
        if not remit.get("payment_trace_number"):
            raise ValueError(f"claim {claim_id}: the 835 needs the payment trace number (TRN02)")
        method = remit.get("payment_method") or payer.payment_method
        if method not in PAYMENT_METHODS:
            raise ValueError(
                f"claim {claim_id}: payment method {method!r} is not one of "
                f"{', '.join(PAYMENT_METHODS)}"
            )
        key = (
            payer.payer_id,
            payee["npi"],
            remit["adjudicated_date"],
            remit["payment_trace_number"],
        )
        payment = grouped.setdefault(key, Payment(payer, payee, key[2], key[3], method))
        if payment.method != method:
            raise ValueError(
                f"claim {claim_id}: paid by {method} in a {payment.method} payment "
                f"(trace {payment.trace})"
            )
        payment.claims.append(remit)
    out: dict[str, list[Payment]] = {}
    for key in sorted(grouped):
        payment = grouped[key]
        payment.claims.sort(key=_claim_order)
        out.setdefault(key[0], []).append(payment)
    return out


def interchange(
    payer_payments: list[Payment],
    *,
    sender_id: str,
    receiver_id: str,
    control: int,
    created: datetime,
    usage: str = "T",
) -> str:
    """One ISA/GS interchange (one payer) holding one 835 transaction per payment."""
    transactions = [
        transaction(payment, f"{number:04d}")
        for number, payment in enumerate(payer_payments, start=1)
    ]
    return envelope(
        "HP", VERSION, sender_id, receiver_id, control, control, created, usage, transactions
    )


def write_835(
    remittances: Iterable[Record],
    payers: Mapping[str, PayerProfile],
    *,
    receiver_id: str,
    created: datetime,
    control_start: int = 1,
    sender_id: str | None = None,
    usage: str = "T",
) -> list[tuple[str, str]]:
    """One 835 interchange per payer: (file name, text), payers in id order.

    *sender_id* is ISA06/GS02, by default each interchange's payer id; control
    numbers (ISA13 = GS06) count up from *control_start*. Self-pay remittances
    are left out: there is no payer to send them.
    """
    out = []
    for control, (payer_id, batch) in enumerate(
        sorted(payments(remittances, payers).items()), start=control_start
    ):
        text = interchange(
            batch,
            sender_id=sender_id or payer_id,
            receiver_id=receiver_id,
            control=control,
            created=created,
            usage=usage,
        )
        out.append((f"{payer_id}-{control:09d}.x12", text))
    return out


# --- Reading ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Delimiters:
    element: str
    component: str
    segment: str


def _delimiters(text: str) -> _Delimiters:
    """The separators an interchange declares in its fixed-width ISA segment."""
    if not text.startswith("ISA") or len(text) < 106:
        raise ValueError("not an X12 interchange: it does not start with an ISA segment")
    return _Delimiters(element=text[3], component=text[104], segment=text[105])


def _el(e: list[str], i: int) -> str:
    """Element *i* of a split segment; trailing empty elements are not written."""
    return e[i] if len(e) > i else ""


def _adjustments(e: list[str]) -> list[Record]:
    out = []
    for i in range(2, len(e), 3):
        if e[i]:
            out.append(
                {
                    "group_code": e[1],
                    "carc": e[i],
                    "amount_cents": parse_cents(_el(e, i + 1)),
                    "rule_id": "",
                }
            )
    return out


def _name(e: list[str]) -> Record:
    return {"last_name": _el(e, 3), "first_name": _el(e, 4)}


@dataclass
class _Transaction:
    control: str
    total: int = 0
    plb: int = 0
    header: Record = field(default_factory=dict)
    claims: list[Record] = field(default_factory=list)
    segments: int = 1


def _close_claim(claim: Record | None) -> None:
    if claim is None:
        return
    check_balance(claim)
    if claim["rendering_npi"] is None:
        claim["rendering_npi"] = claim["payee"].get("npi")


def parse_835(text: str) -> list[Record]:
    """The claim payments in an 835 interchange, as Remittance-shaped dicts.

    Fields the 835 does not carry (remittance and encounter ids, provenance,
    adjustment rule ids, birth dates) are absent or empty. Raises ValueError
    when a claim, a line or a transaction does not balance, or a segment count
    is wrong.
    """
    text = text.lstrip()
    delim = _delimiters(text)
    remittances: list[Record] = []
    trx: _Transaction | None = None
    claim: Record | None = None
    line: Record | None = None
    entity: Record | None = None  # the N1 loop an N3/N4 belongs to
    for raw in text.split(delim.segment):
        if not raw.strip():
            continue
        e = raw.strip().split(delim.element)
        tag = e[0]
        if trx is not None:
            trx.segments += 1
        if tag == "ST":
            trx = _Transaction(e[2])
            claim, line, entity = None, None, None
        elif trx is None:
            continue
        elif tag == "BPR":
            trx.total = parse_cents(e[2])
            trx.header.update(payment_method=e[4], adjudicated_date=parse_d8(e[16]))
        elif tag == "TRN":
            trx.header["payment_trace_number"] = e[2]
        elif tag == "N1" and e[1] == "PR":
            trx.header.update(payer_name=e[2], payer_id=_el(e, 4))
            entity = None
        elif tag == "N1" and e[1] == "PE":
            entity = {
                "name": e[2],
                "npi": _el(e, 4) if _el(e, 3) == "XX" else None,
                "tin": None,
                "address": None,
            }
            trx.header["payee"] = entity
        elif tag == "N3" and entity is not None:
            entity["address"] = {"line1": e[1], "line2": _el(e, 2) or None}
        elif tag == "N4" and entity is not None and entity["address"] is not None:
            entity["address"].update(city=e[1], state=_el(e, 2), postal_code=_el(e, 3))
        elif tag == "REF" and e[1] == "2U":
            trx.header["payer_id"] = e[2]
        elif tag == "REF" and e[1] == "TJ" and entity is not None:
            entity["tin"] = e[2]
        elif tag == "PLB":
            _close_claim(claim)
            claim, line = None, None
            trx.plb += sum(parse_cents(e[i]) for i in range(4, len(e), 2) if e[i])
        elif tag == "SE":
            _close_claim(claim)
            claim, line = None, None
            remittances += _close_transaction(trx, int(e[1]))
            trx = None
        elif tag == "CLP":
            _close_claim(claim)
            entity, line = None, None
            claim = _claim(e, trx.header)
            trx.claims.append(claim)
        elif claim is None:
            continue  # header segments this reader does not keep
        elif tag == "CAS":
            (line["adjustments"] if line is not None else claim["claim_adjustments"]).extend(
                _adjustments(e)
            )
        elif tag == "NM1" and e[1] in ("QC", "IL"):
            claim["patient" if e[1] == "QC" else "subscriber"] = _name(e)
            if _el(e, 8) == "MI":
                claim["member_key"] = e[9]
        elif tag == "NM1" and e[1] == "82":
            claim["rendering_npi"] = _el(e, 9) if _el(e, 8) == "XX" else None
        elif tag == "MOA":
            claim["rarcs"] = [code for code in e[3:8] if code]
        elif tag == "REF" and e[1] == "F8":
            claim["original_payer_claim_control_number"] = e[2]
        elif tag == "DTM" and line is None and e[1] in CLAIM_DATES:
            claim[CLAIM_DATES[e[1]]] = parse_d8(e[2])
        elif tag == "SVC":
            line = _service(e, delim.component, len(claim["lines"]) + 1)
            claim["lines"].append(line)
        elif line is None:
            continue
        elif tag == "DTM" and e[1] == "472":
            line["service_date"] = parse_d8(e[2])
        elif tag == "REF" and e[1] == "6R":
            line["line_number"] = int(e[2]) if e[2].isdigit() else e[2]
        elif tag == "AMT" and e[1] == "B6":
            line["allowed_cents"] = parse_cents(e[2])
        elif tag == "LQ" and e[1] == "HE":
            line["rarcs"].append(e[2])
    if trx is not None:
        raise ValueError(f"transaction {trx.control}: no SE segment")
    return remittances


def _claim(e: list[str], header: Record) -> Record:
    """A remittance from a CLP segment and its transaction's payment and payee."""
    return {
        **header,
        "payee": dict(header.get("payee") or {}),
        "claim_id": e[1],
        "claim_status_code": e[2],
        "total_charge_cents": parse_cents(e[3]),
        "paid_cents": parse_cents(e[4]),
        "patient_responsibility_cents": parse_cents(_el(e, 5)),
        "plan_type": e[6],
        "payer_claim_control_number": e[7],
        "place_of_service": _el(e, 8) or None,
        "frequency_code": _el(e, 9),
        "claim_adjustments": [],
        "lines": [],
        "rarcs": [],
        "original_payer_claim_control_number": None,
        "service_date_from": None,
        "service_date_to": None,
        "payer_received_date": None,
        "patient": None,
        "subscriber": None,
        "member_key": None,
        "rendering_npi": None,
    }


def _service(e: list[str], component: str, number: int) -> Record:
    """A service payment from an SVC segment; REF*6R, when present, renumbers it."""
    parts = e[1].split(component)
    return {
        "line_number": number,
        "procedure_code": parts[1],
        "modifiers": [m for m in parts[2:6] if m],
        "units": _units(e),
        "charge_cents": parse_cents(e[2]),
        "paid_cents": parse_cents(e[3]),
        "allowed_cents": None,
        "adjustments": [],
        "rarcs": [],
        "service_date": None,
    }


def _units(e: list[str]) -> int:
    # SVC05 absent means one unit paid, as the guide says.
    if _el(e, 5):
        value = float(e[5])
        return int(value) if value.is_integer() else round(value)
    return 1


def _close_transaction(trx: _Transaction, declared: int) -> list[Record]:
    if declared != trx.segments:
        raise ValueError(
            f"transaction {trx.control}: SE01 says {declared} segments, "
            f"the transaction has {trx.segments}"
        )
    paid = sum(c["paid_cents"] for c in trx.claims)
    if paid - trx.plb != trx.total:
        raise ValueError(
            f"transaction {trx.control}: BPR02 {amount(trx.total)} != claim "
            f"payments {amount(paid)} - provider adjustments {amount(trx.plb)}"
        )
    return trx.claims
