"""Who bills an encounter: the provider directory an integrator keeps, and nothing made up.

An encounter's billing provider comes from the feed (a FHIR serviceProvider
with an NPI), else from the **provider directory** (``CLAIMS_PROVIDER_DIRECTORY``,
a JSON file), else from a provider given for the whole feed
(``--billing-provider``). When none gives one the encounter is refused, naming
what was looked up: a claim is never billed under a provider the feed did not
name.

It may also list practitioners (``"practitioners"``: identifiers, npi, name,
first_name, taxonomy), for a feed whose practitioner ids are not NPIs.

The directory file::

    {"organizations": [
      {"identifiers": ["https://example.org/org-ids|north-clinic", "MSH-4|NORTHCLINIC"],
       "name": "North Clinic", "npi": "1234567893", "tin": "123456789",
       "taxonomy": "261QP2300X",
       "address": {"line1": "1 Main St", "line2": null, "city": "Columbus",
                   "state": "OH", "postal_code": "432150001"}}]}

An identifier is ``system|value`` as a FHIR Organization carries it (or as a
conditional reference ``Organization?identifier=system|value`` names it), or
``MSH-4|<sending facility>`` and ``PV1-3|<facility>`` for HL7 v2 feeds. The
NPI is checked (its check digit), the tax id must be 9 digits and the ZIP code
9 digits (the 837P needs ZIP+4 for the billing provider).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from processors.npi import is_valid_npi

Record = dict[str, Any]


class DirectoryError(ValueError):
    """The provider directory file cannot be used; the message names the entry and field."""


@dataclass(frozen=True)
class FeedDirectory:
    """Where billing providers come from for one feed: the directory, and one given provider."""

    by_identifier: Mapping[str, Record] = field(default_factory=dict)
    given: Record | None = None
    source: str = ""  # the directory file, named in refusals
    practitioners: Mapping[str, Record] = field(default_factory=dict)
    # The member roster: each patient's coverage by date, as the practice's registration
    # holds it (CLAIMS_MEMBER_ROSTER), for a feed that sends no Coverage.
    members: Mapping[str, list[Enrollment]] = field(default_factory=dict)
    roster: str = ""

    def enrollment(self, identifiers: Iterable[str], on: date) -> Enrollment | None:
        """The roster's coverage of the patient with one of *identifiers* on the date *on*."""
        for ident in identifiers:
            for enrolled in self.members.get(ident, ()):
                if enrolled.start <= on and (enrolled.end is None or on < enrolled.end):
                    return enrolled
        return None

    def find_practitioner(self, identifiers: Iterable[str]) -> Record | None:
        """The directory's rendering or referring provider for one of *identifiers*."""
        return _first(self.practitioners, identifiers)

    def find(self, identifiers: Iterable[str]) -> Record | None:
        """The directory's billing provider for the first of *identifiers* it holds."""
        return _first(self.by_identifier, identifiers)

    def where_to_add(self) -> str:
        """How to give a billing provider, for a refusal's message."""
        if self.source:
            return f"add it to the provider directory {self.source}"
        return (
            "set CLAIMS_PROVIDER_DIRECTORY to a provider directory file that lists it "
            "(README, Provider directory), or give one with --billing-provider"
        )

    def with_given(self, given: Record | None) -> FeedDirectory:
        """The same directory, with *given* as the provider of the whole feed."""
        return replace(self, given=given)

    def with_roster(self, path: Path | None) -> FeedDirectory:
        """The same directory, with the member roster in *path* (none when *path* is None)."""
        if path is None:
            return self
        return replace(self, members=load_roster(path), roster=str(path))


def _first(table: Mapping[str, Record], identifiers: Iterable[str]) -> Record | None:
    """A copy of *table*'s entry for the first of *identifiers* it holds."""
    for ident in identifiers:
        found = table.get(ident)
        if found is not None:
            return dict(found)
    return None


def _read_json(path: Path, what: str) -> Any:
    """The JSON document in *path*; a DirectoryError naming *what* it should have been."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DirectoryError(f"{what} {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise DirectoryError(f"{what} {path} is not JSON: {exc.msg}") from exc


@dataclass(frozen=True)
class Enrollment:
    """One stretch of a patient's coverage in the member roster."""

    payer: str  # a payer profile id, or a real payer's id or name (payer_directory.csv)
    member_id: str
    start: date
    end: date | None  # exclusive; None while it lasts
    relationship: str  # of the patient to the subscriber: self, child, spouse, other


RELATIONSHIPS = ("self", "child", "spouse", "other")


def load_roster(path: Path) -> dict[str, list[Enrollment]]:
    """The member roster file: ``{"members": [{"patient": [ids], "payer", "member_id",
    "start", "end", "relationship"}]}``, by each of the patient's identifiers."""
    doc = _read_json(path, "member roster")
    by_patient: dict[str, list[Enrollment]] = {}
    for n, row in enumerate(doc.get("members") or [], start=1):
        where = f"{path.name} member {n}"
        try:
            enrolled = Enrollment(
                str(row["payer"]),
                str(row["member_id"]),
                date.fromisoformat(row["start"]),
                date.fromisoformat(row["end"]) if row.get("end") else None,
                str(row.get("relationship") or "self"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DirectoryError(f"{where}: needs payer, member_id and start ({exc})") from exc
        if enrolled.relationship not in RELATIONSHIPS:
            raise DirectoryError(f"{where}: relationship must be one of {', '.join(RELATIONSHIPS)}")
        for ident in row.get("patient") or []:
            by_patient.setdefault(str(ident), []).append(enrolled)
    return by_patient


def billing_for(settings: Settings, given: Record | None = None) -> FeedDirectory:
    """The settings' provider directory (``CLAIMS_PROVIDER_DIRECTORY``) and member roster
    (``CLAIMS_MEMBER_ROSTER``), with *given* as the provider of the whole feed."""
    directory = load_directory(settings.provider_directory).with_given(given)
    return directory.with_roster(settings.member_roster)


def load_directory(path: Path | None) -> FeedDirectory:
    """The provider directory in *path* (an empty one when *path* is None)."""
    if path is None:
        return FeedDirectory()
    doc = _read_json(path, "provider directory")
    entries = doc.get("organizations") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise DirectoryError(f"provider directory {path}: no 'organizations' list")
    by_identifier: dict[str, Record] = {}
    for n, entry in enumerate(entries, start=1):
        provider = provider_record(entry, f"{path.name} organization {n}")
        for ident in entry.get("identifiers") or []:
            by_identifier[str(ident)] = provider
        by_identifier[f"npi|{provider['npi']}"] = provider
    practitioners: dict[str, Record] = {}
    for n, entry in enumerate(doc.get("practitioners") or [], start=1):
        person = practitioner_record(entry, f"{path.name} practitioner {n}")
        for ident in entry.get("identifiers") or []:
            practitioners[str(ident)] = person
    return FeedDirectory(by_identifier, None, str(path), practitioners)


def practitioner_record(entry: Any, where: str) -> Record:
    """A claims.Provider (a person who renders or refers) from one directory entry."""
    if not isinstance(entry, dict):
        raise DirectoryError(f"{where} is not an object")
    npi = str(entry.get("npi") or "")
    if not is_valid_npi(npi):
        raise DirectoryError(f"{where}: npi {npi!r} is not a valid NPI (10 digits, check digit)")
    if not entry.get("name"):
        raise DirectoryError(f"{where}: no (family) name")
    return {
        "npi": npi,
        "entity_type": "1",
        "name": str(entry["name"]),
        "first_name": entry.get("first_name"),
        "taxonomy": entry.get("taxonomy"),
        "tin": None,
        "address": None,
    }


def provider_record(entry: Any, where: str) -> Record:
    """A claims.Provider (an organization that bills) from one directory entry."""
    if not isinstance(entry, dict):
        raise DirectoryError(f"{where} is not an object")
    npi = str(entry.get("npi") or "")
    if not is_valid_npi(npi):
        raise DirectoryError(f"{where}: npi {npi!r} is not a valid NPI (10 digits, check digit)")
    tin = str(entry.get("tin") or "")
    if not (len(tin) == 9 and tin.isdigit()):
        raise DirectoryError(f"{where}: tin {tin!r} must be the 9-digit tax id")
    if not entry.get("name"):
        raise DirectoryError(f"{where}: no name")
    address = entry.get("address")
    if not isinstance(address, dict) or not address.get("line1") or not address.get("city"):
        raise DirectoryError(f"{where}: address needs line1, city, state and postal_code")
    postal = str(address.get("postal_code") or "").replace("-", "")
    if not (len(postal) == 9 and postal.isdigit()):
        raise DirectoryError(f"{where}: postal_code {postal!r} must be the 9-digit ZIP+4")
    return {
        "npi": npi,
        "entity_type": "2",
        "name": str(entry["name"]),
        "first_name": None,
        "taxonomy": entry.get("taxonomy"),
        "tin": tin,
        "address": {
            "line1": str(address["line1"]),
            "line2": address.get("line2"),
            "city": str(address["city"]),
            "state": str(address.get("state") or ""),
            "postal_code": postal,
        },
    }
