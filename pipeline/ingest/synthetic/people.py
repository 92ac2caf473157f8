"""Patients, subscribers, clinicians and their addresses in the synthetic panel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pipeline.ingest.synthetic.parameters import (
    FAMILY_MEDICINE,
    HMO,
    INTERNAL_MEDICINE,
    MEDICAID,
    MEDICARE,
    NEUROLOGY,
    NURSE_PRACTITIONER_FAMILY,
    ORTHOPAEDIC_SURGERY,
    PEDIATRICS,
    PPO,
    SELF_PAY,
    Weighted,
)
from pipeline.ingest.synthetic.scenarios import Scenario
from processors.npi import npi_check_digit

# --- People, providers, places --------------------------------------------------


@dataclass(frozen=True)
class Address:
    """A postal address."""

    line1: str
    line2: str | None
    city: str
    state: str
    postal_code: str


@dataclass(frozen=True)
class Person:
    """A patient or subscriber."""

    person_id: str
    last_name: str
    first_name: str
    birth_date: date
    sex: str
    address: Address


@dataclass(frozen=True)
class Coverage:
    """The insurance on file for a patient."""

    payer_id: str
    member_id: str
    group_number: str | None
    relationship: str
    subscriber: Person
    effective_date: date


@dataclass(frozen=True)
class Clinician:
    """A rendering or referring clinician (an NPI entity type 1)."""

    npi: str
    last_name: str
    first_name: str
    taxonomy: str


@dataclass(frozen=True)
class Patient:
    """A panel patient and what stays fixed about them over the simulation."""

    person: Person
    coverage: Coverage | None
    conditions: tuple[str, ...]
    clinician: Clinician
    new_to_practice: bool
    scenarios: Weighted[Scenario]
    visit_weight: float

    @property
    def payer_key(self) -> str:
        """The payer id, or SELFPAY for a patient without coverage."""
        return self.coverage.payer_id if self.coverage else SELF_PAY


@dataclass
class History:
    """What the practice has done for a patient so far in the simulation."""

    awv_done: bool
    seen: bool = False
    last_visit: date | None = None
    yearly_done: set[str] = field(default_factory=set)


def _npi(first_nine: str) -> str:
    return first_nine + str(npi_check_digit(first_nine))


CLINICIANS: tuple[Clinician, ...] = (
    Clinician(_npi("163047281"), "Okafor", "Adaeze", FAMILY_MEDICINE),
    Clinician(_npi("172958364"), "Lindqvist", "Erik", FAMILY_MEDICINE),
    Clinician(_npi("183615907"), "Patel", "Priya", INTERNAL_MEDICINE),
    Clinician(_npi("119274650"), "Nguyen", "Thomas", INTERNAL_MEDICINE),
    Clinician(_npi("145820936"), "Alvarez", "Sofia", PEDIATRICS),
    Clinician(_npi("130596418"), "Brennan", "Molly", NURSE_PRACTITIONER_FAMILY),
)
REFERRING_CLINICIANS: tuple[Clinician, ...] = (
    Clinician(_npi("158302746"), "Kowalski", "Daniel", ORTHOPAEDIC_SURGERY),
    Clinician(_npi("127640395"), "Haddad", "Rana", ORTHOPAEDIC_SURGERY),
    Clinician(_npi("191573028"), "Fischer", "Anna", NEUROLOGY),
)

LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Hill",
    "Green",
    "Adams",
    "Baker",
    "Nelson",
    "Carter",
    "Mitchell",
    "Roberts",
    "Turner",
    "Phillips",
)
FIRST_NAMES = {
    "F": (
        "Mary",
        "Patricia",
        "Jennifer",
        "Linda",
        "Elizabeth",
        "Barbara",
        "Susan",
        "Jessica",
        "Sarah",
        "Karen",
        "Lisa",
        "Nancy",
        "Betty",
        "Sandra",
        "Ashley",
        "Emily",
        "Olivia",
        "Emma",
        "Sophia",
        "Ava",
        "Mia",
        "Harper",
        "Aaliyah",
        "Maria",
        "Grace",
    ),
    "M": (
        "James",
        "Robert",
        "John",
        "Michael",
        "David",
        "William",
        "Richard",
        "Joseph",
        "Thomas",
        "Charles",
        "Christopher",
        "Daniel",
        "Matthew",
        "Anthony",
        "Mark",
        "Liam",
        "Noah",
        "Elijah",
        "Lucas",
        "Mateo",
        "Ethan",
        "Jayden",
        "Malik",
        "Carlos",
        "Kevin",
    ),
}
STREETS = (
    "High St",
    "Broad St",
    "Maple Ave",
    "Oak St",
    "Summit St",
    "Indianola Ave",
    "Cleveland Ave",
    "Livingston Ave",
    "Main St",
    "Elm St",
    "Cedar Ln",
    "Park Ave",
    "Riverside Dr",
    "Lake Rd",
    "Hamilton Rd",
    "Morse Rd",
    "Karl Rd",
    "Sawmill Rd",
)
# (city, state, ZIP code): the practice's area first, a few neighbouring states after.
LOCAL_PLACES = (
    ("Columbus", "OH", "43201"),
    ("Columbus", "OH", "43206"),
    ("Columbus", "OH", "43214"),
    ("Columbus", "OH", "43224"),
    ("Columbus", "OH", "43232"),
    ("Upper Arlington", "OH", "43221"),
    ("Worthington", "OH", "43085"),
    ("Westerville", "OH", "43081"),
    ("Dublin", "OH", "43017"),
    ("Hilliard", "OH", "43026"),
    ("Grove City", "OH", "43123"),
    ("Reynoldsburg", "OH", "43068"),
    ("Gahanna", "OH", "43230"),
    ("Delaware", "OH", "43015"),
    ("Newark", "OH", "43055"),
    ("Lancaster", "OH", "43130"),
    ("Marysville", "OH", "43040"),
)
DISTANT_PLACES = (
    ("Lexington", "KY", "40502"),
    ("Indianapolis", "IN", "46204"),
    ("Huntington", "WV", "25701"),
    ("Pittsburgh", "PA", "15213"),
    ("Detroit", "MI", "48201"),
)
DISTANT_SHARE = 0.06

# MBI letters: A-Z without S, L, O, I, B and Z.
MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"
DIGITS = "0123456789"

# Age bands of the panel, by share: (label, lowest age, highest age).
AGE_BANDS: Weighted[tuple[str, int, int]] = Weighted(
    (
        (("child", 0, 17), 22),
        (("adult", 18, 64), 55),
        (("senior", 65, 95), 23),
    )
)
# Who a patient's own clinician is, by age band.
PRIMARY_CLINICIAN_MIX: dict[str, Weighted[str]] = {
    "child": Weighted(((PEDIATRICS, 70), (FAMILY_MEDICINE, 30))),
    "adult": Weighted(
        ((FAMILY_MEDICINE, 55), (INTERNAL_MEDICINE, 30), (NURSE_PRACTITIONER_FAMILY, 15))
    ),
    "senior": Weighted(
        ((INTERNAL_MEDICINE, 50), (FAMILY_MEDICINE, 40), (NURSE_PRACTITIONER_FAMILY, 10))
    ),
}
PAYER_MIX: dict[str, Weighted[str]] = {
    "child": Weighted(((MEDICAID, 35), (PPO, 35), (HMO, 28), (SELF_PAY, 2))),
    "adult": Weighted(((MEDICAID, 16), (PPO, 45), (HMO, 33), (SELF_PAY, 6))),
    "senior": Weighted(((MEDICARE, 93), (PPO, 5), (SELF_PAY, 2))),
}
