"""Member state: what the payer simulator and the follow-up rules remember about a member.

The state lives in one key-value store (a faust table on the workers, a dict
in the dry run and the tests) as rows whose keys start with the member key, so
they all sit in the member's partition (the table's partitioner hashes only
the member part, :func:`member_of`):

- the **member row** (key: the member key): the schema version, a sequence
  number counting the claims applied, the accumulators of the kept plan years,
  the claims reversed by a replacement or void, and what falls due when
  (follow-ups and reminders). It grows only with the member's pending
  follow-ups and reversals, never with the number of claims.
- a **claim row** per adjudicated claim: the payer's recorded answer (what
  rebuilds the remittances it sent), what it did to the member row, and the
  claim itself when a later stage needs it (denied or unanswered). Written once.
- a **service row** per paid service fingerprint: the claim that paid it.
- an **item row** per rework item with a deadline: its reminder date, and
  whether it was reminded or acted on.

The rows' shapes are the TypedDicts below (:class:`MemberRow`, :class:`ClaimRow`,
:class:`ServiceRow`, :class:`ItemRow`), versioned by :data:`STATE_VERSION`; a
row is JSON as the changelog holds it, and only this module reads or writes
one. A :class:`MemberState` reads rows through to the store and buffers writes;
:meth:`MemberState.changes` lists them detail rows first and the member row
last. A store that loses the tail of a write (a crash) then holds claim rows
the member row has not counted yet (their sequence number is higher than the
member's), and the next delivery of such a claim applies its recorded effects
instead of deciding it again.

Plan years before :data:`KEPT_PLAN_YEARS` are forgotten as soon as a claim of
a later year is applied (deterministic: driven by the member's own claims);
the rows they leave behind are ignored, and removed later by
:func:`stale_rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypedDict, cast

from processors.jsonsafe import from_json, to_json

Record = dict[str, Any]
Store = Mapping[bytes, Any]

STATE_VERSION = 2


class Accumulators(TypedDict):
    """One plan year's accumulators: deductible met, out of pocket paid, uses per benefit."""

    deductible: int
    out_of_pocket: int
    uses: dict[str, int]


class MemberRow(TypedDict):
    """The member row: counts and indexes, never growing with the number of claims."""

    v: int
    seq: int  # claims applied
    years: dict[str, Accumulators]  # plan year -> accumulators, for the kept years
    first_year: int | None  # earliest plan year kept; None until a claim is applied
    reversed: dict[str, dict[str, str]]  # plan year -> claim id -> the claim reversing it
    due: dict[str, str]  # due token (DUE_CLAIM / DUE_ITEM + id) -> ISO date


class Answer(TypedDict):
    """The payer's answer to a claim, as kept: what rebuilds its remittance."""

    year: str
    status: str  # CLP02
    lines: list[Record]  # adjudicated lines (claims.RemittanceLine, JSON-safe)
    rarcs: list[str]
    pccn: str  # payer claim control number
    original_pccn: str | None
    frequency: str
    fingerprint: str  # the service fingerprint of the claim
    applied: Accumulators  # what the answer took from the year's accumulators


class _Awaiting(TypedDict):
    payer_id: str
    filed: str  # ISO date
    turnaround_days: int


class Awaiting(_Awaiting, total=False):
    """A claim the payer has not answered: when it was filed, and the payer's turnaround."""

    followed_up: bool  # version 1 rows only


class Effects(TypedDict):
    """What applying a claim did to the member row (applied again after a lost write)."""

    years: dict[str, Accumulators]
    reversed: list[list[str]]  # [original claim id, plan year]
    services_dropped: list[str]
    service: list[str] | None  # [fingerprint, plan year] of the service this claim paid
    due: dict[str, str]
    first_year: int | None


class _ClaimRow(TypedDict):
    v: int
    seq: int  # the member row's seq once this claim is applied
    year: str
    answer: Answer | None  # None for a void and for a claim without an answer
    reversal: str | None  # the claim whose payment this one reversed
    void_denied: bool
    claim: Record | None  # the claim itself (JSON-safe) when a later stage needs it
    awaiting: Awaiting | None
    effects: Effects | None  # None in rows upgraded from version 1


class ClaimRow(_ClaimRow, total=False):
    """One adjudicated claim: the recorded answer, and what it did to the member row.

    (The keys below are absent in rows upgraded from version 1, or only there.)
    """

    claim_id: str
    before: Accumulators | None  # version 1: the accumulators it was decided from


class ServiceRow(TypedDict):
    """A paid service fingerprint: the claim that paid it."""

    claim_id: str
    year: str


class _ItemRow(TypedDict):
    claim_id: str | None
    encounter_id: str
    payer_id: str | None
    category: str
    action: str
    queue: str
    amount_cents: int
    deadline: str  # ISO date
    deadline_kind: str
    service_date: str | None  # ISO date
    year: str
    remind_on: str  # ISO date
    reminded: bool
    closed: bool


class ItemRow(_ItemRow, total=False):
    """A rework item with a deadline: when to remind, and whether it was reminded or closed."""

    suggested_fix: str | None


ROW_SHAPES: dict[str, type] = {
    "member": MemberRow,
    "claim": ClaimRow,
    "service": ServiceRow,
    "item": ItemRow,
}
# Plan years a member's state keeps: this one and the last.
KEPT_PLAN_YEARS = 2
SEP = b"\x00"
CLAIM, SERVICE, ITEM = b"C", b"S", b"I"
# Due-index tokens: a claim awaiting an answer, an open item awaiting its reminder.
DUE_CLAIM, DUE_ITEM = "C:", "I:"
# Days past the payer's usual turnaround before an unanswered claim gets a status inquiry.
GRACE_DAYS = 15


def follow_up_due(awaiting: Awaiting | Record) -> date:
    """When a claim without an answer needs a status inquiry: turnaround plus grace."""
    filed = date.fromisoformat(awaiting["filed"])
    return filed + timedelta(days=awaiting["turnaround_days"] + GRACE_DAYS)


def next_due(row: MemberRow | Mapping[str, Any] | None) -> date | None:
    """The earliest day a follow-up or reminder of this member falls due (from its member row)."""
    due = (row or {}).get("due") or {}
    return min((date.fromisoformat(when) for when in due.values()), default=None)


def member_of(key: bytes) -> bytes:
    """The member key a state row belongs to (the row's partition key)."""
    return key.split(SEP, 1)[0]


def is_member_row(key: bytes) -> bool:
    """True for a member row, False for a claim, service or item row."""
    return SEP not in key


def row_key(member: bytes, kind: bytes, ident: str) -> bytes:
    """The key of one of *member*'s detail rows."""
    return member + SEP + kind + SEP + ident.encode()


def new_year() -> Accumulators:
    """Accumulators of a plan year the member has no claims in yet."""
    return {"deductible": 0, "out_of_pocket": 0, "uses": {}}


def row_kind(key: bytes) -> str:
    """Which shape of :data:`ROW_SHAPES` the row under *key* has."""
    if is_member_row(key):
        return "member"
    return {CLAIM: "claim", SERVICE: "service", ITEM: "item"}[key.split(SEP, 2)[1]]


def _new_member_row() -> MemberRow:
    return {
        "v": STATE_VERSION,
        "seq": 0,
        "years": {},
        "first_year": None,
        "reversed": {},
        "due": {},
    }


@dataclass
class MemberState:
    """One member's rows as read from *store*, with this call's writes buffered.

    Reads see the buffered writes. Nothing reaches the store until the caller
    applies :meth:`changes` (``None`` deletes a row).
    """

    store: Store
    member: bytes
    row: MemberRow = field(default_factory=_new_member_row)
    writes: dict[bytes, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store | None, member: bytes) -> MemberState:
        """The state of *member* in *store* (upgrading a version 1 row on the way)."""
        store = {} if store is None else store
        found = store.get(member)
        state = cls(store, member)
        if found is None:
            return state
        if found.get("v") == STATE_VERSION:
            state.row = _copy_row(found)
        else:
            _upgrade_v1(state, found)
        return state

    def fork(self) -> MemberState:
        """A state that starts where this one is (buffered writes included) and leaves it be."""
        return MemberState(self.store, self.member, _copy_row(self.row), dict(self.writes))

    def rows(self) -> dict[bytes, Any]:
        """Every row of this member as the store would hold it after :meth:`commit`."""
        view = _Overlay(self.store, dict(self.writes))
        out = {k: view[k] for k in view if member_of(k) == self.member}
        out[self.member] = self.row
        return out

    # --- the member row -------------------------------------------------------------

    @property
    def seq(self) -> int:
        """How many claims the member row has applied."""
        return int(self.row["seq"])

    def year(self, year: str) -> Accumulators:
        """Accumulators of plan *year* (a copy; empty for a year not kept)."""
        acc = self.row["years"].get(year)
        if acc is None:
            return new_year()
        return {**acc, "uses": dict(acc["uses"])}

    @property
    def first_year(self) -> int | None:
        """The earliest plan year the state keeps (None before any claim is applied)."""
        return self.row["first_year"]

    def next_due(self) -> date | None:
        """The earliest day something of this member falls due."""
        return next_due(self.row)

    def kept(self, year: str | int) -> bool:
        """False for a plan year the state has forgotten."""
        first = self.row["first_year"]
        return first is None or int(year) >= int(first)

    def _touch(self) -> None:
        self.writes[self.member] = self.row

    def set_year(self, year: str, acc: Accumulators) -> None:
        """Record plan *year*'s accumulators."""
        self.row = {**self.row, "years": {**self.row["years"], year: acc}}
        self._touch()

    def forget_before(self, first_year: int) -> None:
        """Forget the plan years before *first_year* (their rows are ignored from now on)."""
        first = self.row["first_year"]
        if first is not None and int(first) >= first_year:
            return
        years = {y: a for y, a in self.row["years"].items() if int(y) >= first_year}
        reversed_ = {y: r for y, r in self.row["reversed"].items() if int(y) >= first_year}
        self.row = {**self.row, "years": years, "first_year": first_year, "reversed": reversed_}
        self._touch()

    def reversed_by(self, claim_id: str, year: str) -> str | None:
        """The claim that reversed *claim_id* (of plan *year*), if any."""
        return self.row["reversed"].get(year, {}).get(claim_id)

    def mark_reversed(self, claim_id: str, year: str, by: str) -> None:
        """Remember that *by* reversed *claim_id*'s payment."""
        years = dict(self.row["reversed"])
        years[year] = {**years.get(year, {}), claim_id: by}
        self.row = {**self.row, "reversed": years}
        self._touch()

    def advance(self, seq: int) -> None:
        """Count the claims applied up to *seq*."""
        if seq > self.seq:
            self.row = {**self.row, "seq": seq}
            self._touch()

    @property
    def due(self) -> dict[str, str]:
        """Token -> ISO date of every pending follow-up and reminder."""
        return dict(self.row["due"])

    def set_due(self, token: str, when: str) -> None:
        """Something falls due on *when* (ISO date)."""
        self.row = {**self.row, "due": {**self.row["due"], token: when}}
        self._touch()

    def clear_due(self, token: str) -> bool:
        """Nothing is due any more for *token*; False when nothing was."""
        if token not in self.row["due"]:
            return False
        self.row = {**self.row, "due": {k: v for k, v in self.row["due"].items() if k != token}}
        self._touch()
        return True

    # --- detail rows ----------------------------------------------------------------

    def _read(self, key: bytes) -> Any:
        if key in self.writes:
            return self.writes[key]
        return self.store.get(key)

    def claim(self, claim_id: str, *, forgotten_too: bool = False) -> ClaimRow | None:
        """The claim row of *claim_id*, if the payer has one in a kept year.

        *forgotten_too* also finds a row of a forgotten year not yet removed:
        a redelivered claim is answered from its record whatever its year.
        """
        row = self._read(row_key(self.member, CLAIM, claim_id))
        if row is None or not (forgotten_too or self.kept(row["year"])):
            return None
        return row  # type: ignore[no-any-return]

    def put_claim(self, claim_id: str, row: ClaimRow) -> None:
        """Write *claim_id*'s claim row (once; it is never changed after)."""
        self.writes[row_key(self.member, CLAIM, claim_id)] = row

    def service(self, fingerprint: str) -> str | None:
        """The claim that paid the service *fingerprint* in a kept year, if any."""
        row: ServiceRow | None = self._read(row_key(self.member, SERVICE, fingerprint))
        if row is None or not self.kept(row["year"]):
            return None
        return row["claim_id"]

    def put_service(self, fingerprint: str, claim_id: str, year: str) -> None:
        """Remember that *claim_id* paid the service *fingerprint*."""
        row: ServiceRow = {"claim_id": claim_id, "year": year}
        self.writes[row_key(self.member, SERVICE, fingerprint)] = row

    def drop_service(self, fingerprint: str) -> None:
        """Forget who paid *fingerprint* (its payment was reversed)."""
        self.writes[row_key(self.member, SERVICE, fingerprint)] = None

    def item(self, rework_id: str) -> ItemRow | None:
        """The open item row of *rework_id*, if any."""
        return self._read(row_key(self.member, ITEM, rework_id))  # type: ignore[no-any-return]

    def put_item(self, rework_id: str, row: ItemRow) -> None:
        """Keep an open item (until its reminder or an action on it)."""
        self.writes[row_key(self.member, ITEM, rework_id)] = row

    def drop_item(self, rework_id: str) -> None:
        """Forget an item (reminded, or acted on)."""
        self.writes[row_key(self.member, ITEM, rework_id)] = None

    # --- writing --------------------------------------------------------------------

    def changes(self) -> list[tuple[bytes, Any]]:
        """The buffered writes, detail rows first and the member row last."""
        details = [(k, v) for k, v in self.writes.items() if k != self.member]
        if self.member in self.writes:
            details.append((self.member, self.writes[self.member]))
        return details

    def commit(self, store: MutableMapping[bytes, Any]) -> None:
        """Apply the buffered writes to *store*, in :meth:`changes` order."""
        for key, value in self.changes():
            if value is None:
                if key in store:
                    del store[key]
            else:
                store[key] = value
        self.writes = {}


class _Overlay(Mapping[bytes, Any]):
    """*base* with *writes* over it (``None`` hides a row)."""

    def __init__(self, base: Store, writes: dict[bytes, Any]) -> None:
        self.base = base
        self.over = writes

    def __getitem__(self, key: bytes) -> Any:
        if key in self.over:
            value = self.over[key]
            if value is None:
                raise KeyError(key)
            return value
        return self.base[key]

    def __iter__(self) -> Iterator[bytes]:
        for key in self.base:
            if key not in self.over:
                yield key
        for key, value in self.over.items():
            if value is not None:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _copy_row(row: MemberRow) -> MemberRow:
    return {
        **row,
        "years": dict(row["years"]),
        "reversed": dict(row.get("reversed") or {}),
        "due": dict(row.get("due") or {}),
    }


# --- version 1: one row per member holding everything ------------------------------


def _upgrade_v1(state: MemberState, old: Record) -> None:
    """Read a version 1 member row (one JSON value with every claim) into version 2 rows.

    Version 1 claims have no recorded effects: they keep the accumulators
    they were decided from (``before``), so a redelivered one is decided again
    from there, as version 1 did.
    """
    years: dict[str, Accumulators] = {
        y: {
            "deductible": a["deductible"],
            "out_of_pocket": a["out_of_pocket"],
            "uses": dict(a.get("uses") or {}),
        }
        for y, a in (old.get("years") or {}).items()
    }
    row = _new_member_row()
    row["years"] = years
    row["first_year"] = int(min(years)) if years else None
    claims: dict[str, Record] = old.get("claims") or {}
    for claim_id, entry in claims.items():
        answer = entry.get("answer")
        filed = str(entry.get("awaiting", {}).get("filed", ""))
        year = str(answer["year"]) if answer else filed[:4]
        if not year:
            continue
        awaiting = entry.get("awaiting")
        state.put_claim(
            claim_id,
            {
                "v": STATE_VERSION,
                "seq": 0,
                "year": year,
                "before": entry.get("before"),
                "answer": answer,
                "reversal": None,
                "void_denied": False,
                "claim": entry.get("claim"),
                "awaiting": awaiting,
                "effects": None,
            },
        )
        if answer and entry.get("reversed_by"):
            row["reversed"].setdefault(year, {})[claim_id] = entry["reversed_by"]
        if awaiting and not awaiting.get("followed_up") and not answer:
            row["due"][DUE_CLAIM + claim_id] = follow_up_due(awaiting).isoformat()
    for fingerprint, claim_id in (old.get("services") or {}).items():
        entry = claims.get(claim_id) or {}
        if entry.get("answer"):
            state.put_service(fingerprint, claim_id, str(entry["answer"]["year"]))
    for rework_id, item in (old.get("items") or {}).items():
        year = str(item.get("service_date") or item["deadline"])[:4]
        state.put_item(rework_id, cast(ItemRow, {**item, "year": year}))
        if not item.get("reminded") and not item.get("closed"):
            row["due"][DUE_ITEM + rework_id] = item["remind_on"]
    state.row = row
    state.writes[state.member] = row


# --- housekeeping ------------------------------------------------------------------


def stale_rows(store: Store, keys: Iterable[bytes]) -> Iterator[bytes]:
    """The detail rows among *keys* that their member's state has forgotten.

    Safe to delete once the records that wrote them are committed: decisions
    ignore them already (their plan year is before the member's first kept
    year); only a redelivery of such a record would still read them.
    """
    members: dict[bytes, Record | None] = {}
    for key in keys:
        if is_member_row(key):
            continue
        member = member_of(key)
        if member not in members:
            found = store.get(member)
            members[member] = (
                found if found is not None and found.get("v") == STATE_VERSION else None
            )
        row = members[member]
        if row is None:
            continue
        value = store.get(key)
        if value is None:
            continue
        first = row["first_year"]
        if first is not None and int(value["year"]) < int(first):
            yield key


def recorded(value: Any) -> Any:
    """A record kept in a row, with its dates back (rows hold JSON)."""
    return from_json(value)


def keepable(value: Any) -> Any:
    """A record made JSON-safe to keep in a row."""
    return to_json(value)
