"""The simulation: a panel of patients and their encounters in service-date order."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from datetime import date, timedelta

from pipeline.ingest.practice import (
    practice_record,
)
from pipeline.ingest.synthetic.catalogue import (
    _categories,
    _coverage_policies,
    _fitting,
    _needs_modifier_25,
    _scenarios_for,
    unit_limits,
)
from pipeline.ingest.synthetic.miscoding import _inject_coding_problem
from pipeline.ingest.synthetic.parameters import (
    CLEAN,
    COMMERCIAL,
    DEFAULT_START,
    DUPLICATE_SOURCE_SHARE,
    HMO,
    INTERNAL_MEDICINE,
    MEDICAID,
    MEDICARE,
    MEDICARE_ROUTINE_PHYSICAL_SHARE,
    MIN_PANEL,
    NEW_PATIENT_SHARE,
    NON_COVERED_SERVICE,
    OFFICE,
    OWN_CLINICIAN_SHARE,
    PATIENT_TRIES,
    PEDIATRICS,
    PPO,
    PREVENTIVE,
    PROBLEM_TRIES,
    RECENT_ENCOUNTERS,
    REFERRED_IMAGING_SHARE,
    SCENARIO_TRIES,
    SELF_PAY,
    SIMULATED_DAYS,
    SOURCE,
    TELEHEALTH,
    TELEHEALTH_SHARE,
    UNDERCODED_SHARE,
    WELLNESS,
    Record,
    Weighted,
)
from pipeline.ingest.synthetic.people import (
    AGE_BANDS,
    CLINICIANS,
    DISTANT_PLACES,
    DISTANT_SHARE,
    FIRST_NAMES,
    LAST_NAMES,
    LOCAL_PLACES,
    PAYER_MIX,
    PRIMARY_CLINICIAN_MIX,
    REFERRING_CLINICIANS,
    STREETS,
    Address,
    Clinician,
    Coverage,
    History,
    Patient,
    Person,
)
from pipeline.ingest.synthetic.problems import (
    HEADER_OF,
    INVALID_FORM_OF,
    NEW_PLAN_AFTER,
    NEW_PLAN_SHARE,
    PROBLEMS,
    PROBLEMS_BY_LABEL,
    RETIRED_CONSULTATION_FOR,
    UNCOVERED_LAB_REASON,
)
from pipeline.ingest.synthetic.records import (
    _age,
    _business_days,
    _clinician_record,
    _clone,
    _comorbidities,
    _coverage_record,
    _digits,
    _documentation,
    _mbi,
    _mistyped_member_id,
    _person_record,
    _preventive_code,
    _procedure,
    _received_at,
)
from pipeline.ingest.synthetic.scenarios import (
    CHRONIC_CONDITIONS,
    DOCUMENTATION,
    FALLBACK_SCENARIO,
    OFFICE_VISIT_LEVELS,
    PROBLEM_VISIT_LEVELS,
    RELEASE_DELAYS,
    VISIT_FAMILY_OF,
    Scenario,
)
from processors.contracts.topics import member_key
from processors.ids import stable_id
from processors.refdata import (
    shipped_payers,
)

# --- The simulation -------------------------------------------------------------


class _Simulation:
    """One run: the panel, each patient's history and the encounters in date order."""

    def __init__(self, count: int, seed: int, start: date) -> None:
        self.count = count
        self.seed = seed
        self.start = start
        self.rng = random.Random(seed)
        self.payers = shipped_payers()
        self.days = _business_days(start, SIMULATED_DAYS)
        self.person_ids: set[str] = set()
        self.groups = {
            payer: [f"GRP{_digits(self.rng, 6)}" for _ in range(8)] for payer in COMMERCIAL
        }
        self.patients = [self._new_patient() for _ in range(max(MIN_PANEL, count // 3))]
        self.panel = Weighted((p, p.visit_weight) for p in self.patients)
        self.histories = {
            p.person.person_id: History(
                awv_done=_age(p.person.birth_date, start) >= 66 or self.rng.random() < 0.5
            )
            for p in self.patients
        }
        self.recent: deque[tuple[str, Record]] = deque(maxlen=RECENT_ENCOUNTERS)

    # The panel.

    def _new_person_id(self) -> str:
        while True:
            person_id = f"P{self.rng.randint(10_000_000, 99_999_999)}"
            if person_id not in self.person_ids:
                self.person_ids.add(person_id)
                return person_id

    def _address(self) -> Address:
        rng = self.rng
        places = DISTANT_PLACES if rng.random() < DISTANT_SHARE else LOCAL_PLACES
        city, state, postal_code = rng.choice(places)
        line2 = f"Apt {rng.randint(1, 24)}{rng.choice('ABCD')}" if rng.random() < 0.15 else None
        line1 = f"{rng.randint(100, 9899)} {rng.choice(STREETS)}"
        return Address(line1, line2, city, state, postal_code)

    def _birth_date(self, age: int) -> date:
        days = int((age + 0.01 + 0.98 * self.rng.random()) * 365.2425)
        return self.start - timedelta(days=days)

    def _person(self, age: int, sex: str, last_name: str, address: Address) -> Person:
        return Person(
            person_id=self._new_person_id(),
            last_name=last_name,
            first_name=self.rng.choice(FIRST_NAMES[sex]),
            birth_date=self._birth_date(age),
            sex=sex,
            address=address,
        )

    def _effective_date(self, earliest: date) -> date:
        """A first of the month some months to years back, not before *earliest*."""
        back = self.start - timedelta(days=self.rng.randint(30, 8 * 365))
        return max(back.replace(day=1), earliest)

    def _coverage(self, payer_id: str, band: str, person: Person) -> Coverage | None:
        rng = self.rng
        if payer_id == SELF_PAY:
            return None
        if payer_id == MEDICARE:
            birth = person.birth_date
            turned_65 = birth.replace(year=birth.year + 65, day=1)
            return Coverage(MEDICARE, _mbi(rng), None, "18", person, turned_65)
        if payer_id == MEDICAID:
            member_id = _digits(rng, 12)
            return Coverage(
                MEDICAID, member_id, None, "18", person, self._effective_date(person.birth_date)
            )
        relationship, subscriber = "18", person
        age = _age(person.birth_date, self.start)
        if band == "child":
            relationship = "19"
            parent_sex = rng.choice("FM")
            subscriber = self._person(
                age + rng.randint(22, 42), parent_sex, person.last_name, person.address
            )
        elif band == "adult" and rng.random() < 0.28:
            relationship = "01"
            spouse_sex = "M" if person.sex == "F" else "F"
            subscriber = self._person(
                max(18, age + rng.randint(-6, 6)), spouse_sex, person.last_name, person.address
            )
        prefix = "PPO" if payer_id == PPO else "HMO"
        return Coverage(
            payer_id,
            f"{prefix}{_digits(rng, 9)}",
            rng.choice(self.groups[payer_id]),
            relationship,
            subscriber,
            self._effective_date(person.birth_date),
        )

    def _conditions(self, age: int) -> tuple[str, ...]:
        band = 0 if age < 18 else 1 if age < 40 else 2 if age < 65 else 3
        return tuple(
            self.rng.choice(condition.codes)
            for condition in CHRONIC_CONDITIONS
            if age >= condition.min_age and self.rng.random() < condition.prevalence[band]
        )

    def _primary_clinician(self, band: str) -> Clinician:
        taxonomy = PRIMARY_CLINICIAN_MIX[band].draw(self.rng)
        return self.rng.choice([c for c in CLINICIANS if c.taxonomy == taxonomy])

    def _new_patient(self) -> Patient:
        rng = self.rng
        band, low, high = AGE_BANDS.draw(rng)
        if band == "senior":  # fewer patients at each year of age past 65
            age = low + int(rng.random() ** 1.6 * (high - low + 1))
        else:
            age = rng.randint(low, high)
        sex = "F" if rng.random() < (0.56 if band == "senior" else 0.51) else "M"
        person = self._person(age, sex, rng.choice(LAST_NAMES), self._address())
        age = _age(person.birth_date, self.start)
        coverage = self._coverage(PAYER_MIX[band].draw(rng), band, person)
        conditions = self._conditions(age)
        payer_key = coverage.payer_id if coverage else SELF_PAY
        scenarios = _scenarios_for(age, sex, conditions, payer_key)
        weight = 1.0 + 0.8 * len(conditions) + (1.5 if age < 2 else 0.0)
        return Patient(
            person,
            coverage,
            conditions,
            self._primary_clinician(band),
            rng.random() < NEW_PATIENT_SHARE,
            scenarios,
            weight,
        )

    # Choosing who is seen for what.

    def _draw_problem(self) -> str | None:
        draw = self.rng.random()
        for problem in PROBLEMS:
            if draw < problem.rate:
                return problem.label
            draw -= problem.rate
        return None

    def _pick_patient(self, day: date) -> Patient:
        patient = self.patients[0]
        for _ in range(PATIENT_TRIES):
            patient = self.panel.draw(self.rng)
            if self.histories[patient.person.person_id].last_visit != day:
                break
        return patient

    def _pick_scenario(self, patient: Patient, problem: str | None) -> Scenario | None:
        done = self.histories[patient.person.person_id].yearly_done
        if problem is None:
            for _ in range(SCENARIO_TRIES):
                scenario = patient.scenarios.draw(self.rng)
                if scenario.yearly is None or scenario.yearly not in done:
                    return scenario
        payer_id = patient.coverage.payer_id if patient.coverage else None
        options = [
            (s, s.weight)
            for s in _fitting(patient.scenarios, problem, payer_id)
            if s.yearly is None or s.yearly not in done
        ]
        return Weighted(options).draw(self.rng) if options else None

    def _choose(self, day: date, problem: str | None) -> tuple[Patient, Scenario, str | None]:
        """A patient and scenario for *day* that can carry *problem*, else a clean one."""
        if problem is not None:
            needs_coverage = PROBLEMS_BY_LABEL[problem].needs_coverage
            for _ in range(PROBLEM_TRIES):
                patient = self._pick_patient(day)
                if needs_coverage and patient.coverage is None:
                    continue
                scenario = self._pick_scenario(patient, problem)
                if scenario is not None:
                    return patient, scenario, problem
        patient = self._pick_patient(day)
        return patient, self._pick_scenario(patient, None) or FALLBACK_SCENARIO, None

    # Building the event.

    def _ids(self, index: int) -> tuple[str, str]:
        start = self.start.isoformat()
        return (
            stable_id("EVT", self.seed, start, index),
            stable_id("ENC", self.seed, start, index, length=12),
        )

    def _rendering(self, patient: Patient, age: int) -> Clinician:
        if self.rng.random() < OWN_CLINICIAN_SHARE:
            return patient.clinician
        allowed = [
            c
            for c in CLINICIANS
            if not (c.taxonomy == PEDIATRICS and age >= 18)
            and not (c.taxonomy == INTERNAL_MEDICINE and age < 18)
        ]
        return self.rng.choice(allowed)

    def _visit(
        self, scenario: Scenario, patient: Patient, history: History, age: int, label: str
    ) -> tuple[str, str]:
        """The E/M code for *scenario*, and the label (a routine physical may not be covered)."""
        rng = self.rng
        new = patient.new_to_practice and not history.seen
        if scenario.visit == WELLNESS:
            if label == CLEAN and rng.random() < MEDICARE_ROUTINE_PHYSICAL_SHARE:
                return _preventive_code(max(age, 40), new), NON_COVERED_SERVICE
            code = "G0439" if history.awv_done else "G0438"
            history.awv_done = True
            return code, label
        if scenario.visit == PREVENTIVE:
            return _preventive_code(age, new), label
        return OFFICE_VISIT_LEVELS[(str(scenario.visit), new)].draw(rng), label

    def _encounter(
        self, index: int, day: date, patient: Patient, scenario: Scenario, problem: str | None
    ) -> tuple[Record, str]:
        rng = self.rng
        history = self.histories[patient.person.person_id]
        age = _age(patient.person.birth_date, day)
        label = problem or CLEAN
        diagnoses = list(scenario.diagnoses)
        if scenario.comorbid:
            diagnoses += _comorbidities(patient.conditions, diagnoses)
        telehealth = scenario.telehealth and rng.random() < TELEHEALTH_SHARE
        procedures: list[Record] = []
        minutes: int | None = None
        mdm: str | None = None
        if scenario.visit is not None:
            code, label = self._visit(scenario, patient, history, age, label)
            if scenario.problem_visit is not None:
                procedures.append(_procedure(code, [0]))
                code = PROBLEM_VISIT_LEVELS[scenario.problem_visit].draw(rng)
                refs = list(range(1, min(len(diagnoses), 5)))
                procedures.append(_procedure(code, refs, modifiers=["25"]))
            else:
                modifiers = ["25"] if _needs_modifier_25(scenario) else []
                if telehealth:
                    modifiers.append("95")
                refs = list(scenario.visit_supports or range(min(len(diagnoses), 4)))
                procedures.append(_procedure(code, refs, modifiers=modifiers))
            if code in VISIT_FAMILY_OF:
                minutes, mdm = _documentation(
                    rng, code, DOCUMENTATION.draw(rng), rng.random() < UNDERCODED_SHARE
                )
        for service in scenario.services:
            procedures.append(
                _procedure(
                    service.code, list(service.supports), service.units, list(service.modifiers)
                )
            )

        payer = self.payers[patient.coverage.payer_id] if patient.coverage else None
        coverage = _coverage_record(patient.coverage, payer) if patient.coverage and payer else None
        needs_authorization = payer is not None and bool(
            _categories(scenario) & set(payer.authorization_required)
        )
        referring = None
        if scenario.referral and rng.random() < REFERRED_IMAGING_SHARE:
            referring = rng.choice(
                [c for c in REFERRING_CLINICIANS if c.taxonomy == scenario.referral]
            )
        event_id, encounter_id = self._ids(index)
        event: Record = {
            "event_id": event_id,
            "encounter_id": encounter_id,
            "source": SOURCE,
            "received_at": _received_at(rng, day, RELEASE_DELAYS.draw(rng)),
            "service_date": day,
            "place_of_service": TELEHEALTH if telehealth else OFFICE,
            "patient": _person_record(patient.person),
            "coverage": coverage,
            "other_coverages": [],
            "billing_provider": practice_record(),
            "rendering_provider": _clinician_record(self._rendering(patient, age)),
            "referring_provider": _clinician_record(referring) if referring else None,
            "diagnoses": diagnoses,
            "procedures": procedures,
            "authorization_number": (
                f"PA{_digits(rng, 9)}"
                if needs_authorization and problem != "missing_authorization"
                else None
            ),
            "referral_number": (
                f"RF{_digits(rng, 8)}" if referring and patient.payer_key == HMO else None
            ),
            "documented_minutes": minutes,
            "mdm_level": mdm,
            "established_patient": None,  # the feed codes its visits itself
            "uncoded": [],
        }
        history.seen = True
        history.last_visit = day
        if scenario.yearly:
            history.yearly_done.add(scenario.yearly)
        return event, label

    def _inject(self, problem: str, event: Record) -> None:
        """Put *problem* into *event*, which was built to be able to carry it."""
        rng = self.rng
        coverage = event["coverage"]
        service_date: date = event["service_date"]
        if problem == "header_diagnosis":
            diagnoses = event["diagnoses"]
            at = next(i for i, code in enumerate(diagnoses) if code in HEADER_OF)
            diagnoses[at] = HEADER_OF[diagnoses[at]]
        elif problem == "invalid_diagnosis":
            diagnoses = event["diagnoses"]
            at = next(i for i, code in enumerate(diagnoses) if code in INVALID_FORM_OF)
            diagnoses[at] = INVALID_FORM_OF[diagnoses[at]]
        elif problem == "unknown_procedure":
            visit = event["procedures"][0]
            visit["code"] = RETIRED_CONSULTATION_FOR[visit["code"]]
        elif problem == "units_over_max":
            line = rng.choice(event["procedures"])
            line["units"] = unit_limits()[line["code"]] + rng.randint(1, 3)
        elif problem == "coverage_terminated":
            ended = service_date - timedelta(days=rng.randint(1, 90))
            coverage["termination_date"] = ended
            if coverage["effective_date"] > ended:
                began = ended - timedelta(days=rng.randint(90, 720))
                coverage["effective_date"] = began.replace(day=1)
            if coverage["payer_id"] in NEW_PLAN_AFTER and rng.random() < NEW_PLAN_SHARE:
                # The patient changed jobs: registration holds the new plan beside the old one,
                # but the visit was billed to the old one.
                event["other_coverages"].append(self._new_plan(coverage, ended))
        elif problem == "coverage_not_yet_effective":
            coverage["effective_date"] = service_date + timedelta(days=rng.randint(1, 45))
        elif problem == "invalid_member_id":
            coverage["member_id"] = _mistyped_member_id(
                rng, coverage["payer_id"], coverage["member_id"]
            )
        elif problem == "late_filing":
            limit = self.payers[coverage["payer_id"]].timely_filing_days
            event["received_at"] = _received_at(rng, service_date, limit + rng.randint(1, 60))
        elif problem == "invalid_npi":
            provider = event["rendering_provider"]
            npi = provider["npi"]
            provider["npi"] = npi[:9] + str((int(npi[9]) + rng.randint(1, 9)) % 10)
        elif problem == "lab_not_covered_for_diagnosis":
            # The lab is linked to the symptom that prompted it, which the payer's
            # coverage list for the test does not include.
            policies = _coverage_policies()
            event["diagnoses"].append(UNCOVERED_LAB_REASON)
            for line in event["procedures"]:
                policy = policies.get(line["code"])
                if policy is not None and not policy.covers([UNCOVERED_LAB_REASON]):
                    line["diagnosis_refs"] = [len(event["diagnoses"]) - 1]
        else:  # missing_authorization is made by leaving the number out when building
            _inject_coding_problem(rng, problem, event)

    def _new_plan(self, old: Record, ended: date) -> Record:
        """The commercial plan that replaced *old* the day after it ended."""
        payer_id = NEW_PLAN_AFTER[old["payer_id"]]
        payer = self.payers[payer_id]
        prefix = "PPO" if payer_id == PPO else "HMO"
        return {
            **old,
            "payer_id": payer_id,
            "payer_name": payer.name,
            "plan_type": payer.plan_type,
            "member_id": f"{prefix}{_digits(self.rng, 9)}",
            "group_number": self.rng.choice(self.groups[payer_id]),
            "effective_date": ended + timedelta(days=1),
            "termination_date": None,
        }

    def _duplicate(self, index: int) -> tuple[str, Record, str]:
        """A second encounter for a recent clean one: same patient, day, clinician, services."""
        key, original = self.recent[self.rng.randrange(len(self.recent))]
        event = _clone(original)
        event["event_id"], event["encounter_id"] = self._ids(index)
        event["received_at"] = original["received_at"] + timedelta(days=self.rng.randint(1, 10))
        return key, event, "duplicate_service"

    def run(self) -> Iterator[tuple[str, Record, str]]:
        """Every encounter of the run, in service-date order."""
        for index in range(self.count):
            day = self.days[index * len(self.days) // self.count]
            problem = self._draw_problem()
            if problem == "duplicate_service":
                if self.recent:
                    yield self._duplicate(index)
                    continue
                problem = None
            patient, scenario, problem = self._choose(day, problem)
            event, label = self._encounter(index, day, patient, scenario, problem)
            if problem is not None:
                self._inject(problem, event)
            key = member_key(event)
            if (
                label == CLEAN
                and event["coverage"] is not None
                and self.rng.random() < DUPLICATE_SOURCE_SHARE
            ):
                self.recent.append((key, _clone(event)))
            yield key, event, label


def generate_labelled(
    count: int, seed: int, start: date = DEFAULT_START
) -> Iterator[tuple[str, Record, str]]:
    """*count* encounters as ``(member key, EncounterEvent, label)``.

    The label names the problem injected into the event (one of :data:`LABELS`),
    or is ``"clean"``. Every event is a fresh record the caller may change.
    """
    if count < 0:
        raise ValueError(f"count must be zero or more, not {count}")
    return _Simulation(count, seed, start).run()


def generate(count: int, seed: int, start: date = DEFAULT_START) -> Iterator[tuple[str, Record]]:
    """*count* encounters as ``(member key, EncounterEvent)``, the same for the same arguments."""
    for key, event, _ in generate_labelled(count, seed, start):
        yield key, event
