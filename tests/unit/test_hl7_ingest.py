"""HL7 v2.5 in: registrations, charges, ACKs and message splitting, on hand-written messages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from pipeline.ingest.directory import FeedDirectory, load_directory
from pipeline.ingest.hl7 import (
    Outcome,
    Store,
    apply_adt,
    map_dft,
    map_message,
    map_stream,
    split_messages,
)
from pipeline.kafka.codec import codec_for
from processors.coding.rules import code_encounter
from processors.contracts.findings import HARD
from processors.refdata import load_refdata
from tests.builders import encounter

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hl7"
AT = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
PRACTICE = encounter()["billing_provider"]
FEED = FeedDirectory(given=PRACTICE)
# Every value in the fixtures that is protected health information.
PHI = (
    "TESTPATIENT",
    "AVERY",
    "JORDAN",
    "EXAMPLE",
    "MORGAN",
    "SAMPLE",
    "RILEY",
    "19800304",
    "19790911",
    "19670521",
    "19920115",
    "PPO123456789",
    "HMO987654321",
    "PPO555000111",
    "ACM000111222",
    "Example Ave",
    "Fictional Ln",
    "Placeholder Ct",
    "5550101",
    "250.00",
)


def fixture(name: str) -> str:
    """A fixture message as stored (LF between segments)."""
    return (FIXTURES / name).read_text()


def handled(name: str, store: Store | None = None, text: str | None = None) -> Outcome:
    """The outcome of the fixture *name* (or *text*), given the registrations in *store*."""
    return map_message(text if text is not None else fixture(name), store or {}, FEED, AT)


def registered() -> Store:
    """The store after the A04 of patient HL7T00001."""
    return handled("adt_a04_two_insurances.hl7").store


def ack_segments(ack: str, name: str) -> list[list[str]]:
    """The fields of each *name* segment of an ACK."""
    return [s.split("|") for s in ack.split("\r") if s.startswith(name + "|")]


class TestRegistration:
    def test_a04_registers_the_patient_with_the_primary_and_secondary_coverage(self) -> None:
        """IN1 set id 1 (PPO) is the coverage; IN1 set id 2 (the spouse's HMO) another."""
        outcome = handled("adt_a04_two_insurances.hl7")
        assert outcome.ack_code == "AA"
        assert outcome.events == []
        registration = outcome.store["HL7T00001"]
        assert registration["patient"]["birth_date"] == date(1980, 3, 4)
        assert registration["patient"]["address"]["line2"] == "Apt 2"
        primary = registration["coverage"]
        assert (primary["payer_id"], primary["member_id"], primary["group_number"]) == (
            "PPO-SIM",
            "PPO123456789",
            "GRP100",
        )
        assert primary["plan_type"] == "12"
        assert primary["relationship"] == "18"
        assert primary["subscriber"] == registration["patient"]
        assert primary["effective_date"] == date(2025, 1, 1)
        assert [c["payer_id"] for c in registration["other_coverages"]] == ["HMO-SIM"]

    def test_a_spouse_subscriber_comes_from_the_insured_fields(self) -> None:
        """IN1-17 SPO is relationship 01; the insured's name, birth date, sex from IN1-16/18/43."""
        (secondary,) = registered()["HL7T00001"]["other_coverages"]
        assert secondary["relationship"] == "01"
        subscriber = secondary["subscriber"]
        assert (subscriber["last_name"], subscriber["first_name"]) == ("TESTPATIENT", "JORDAN")
        assert subscriber["birth_date"] == date(1979, 9, 11)
        assert subscriber["sex"] == "M"
        assert subscriber["person_id"] != "HL7T00001"

    def test_a08_updates_the_address_and_the_insurance(self) -> None:
        """The A08's address and IN1 segments replace what the A04 registered."""
        store = handled("adt_a08_address_and_insurance_update.hl7", registered()).store
        registration = store["HL7T00001"]
        assert registration["patient"]["address"] == {
            "line1": "250 Sample Rd",
            "line2": None,
            "city": "Springfield",
            "state": "IL",
            "postal_code": "627049876",
        }
        assert registration["coverage"]["group_number"] == "GRP200"
        assert registration["coverage"]["effective_date"] == date(2026, 1, 1)
        assert registration["other_coverages"][0]["termination_date"] == date(2026, 2, 28)

    def test_an_a08_without_insurance_keeps_the_coverage_on_file(self) -> None:
        """An A08 with no IN1 changes the demographics and keeps the registered coverage."""
        text = "\n".join(
            line
            for line in fixture("adt_a08_address_and_insurance_update.hl7").splitlines()
            if not line.startswith("IN1")
        )
        registration = handled("", registered(), text).store["HL7T00001"]
        assert registration["coverage"]["group_number"] == "GRP100"
        assert registration["coverage"]["subscriber"]["address"]["line1"] == "250 Sample Rd"

    def test_apply_adt_returns_a_new_store_and_leaves_the_given_one_alone(self) -> None:
        """apply_adt is pure: the store passed in is not changed."""
        before: Store = {}
        after = apply_adt(before, fixture("adt_a04_two_insurances.hl7"))
        assert before == {}
        assert list(after) == ["HL7T00001"]

    def test_an_adt_without_the_message_structure_component_is_accepted(self) -> None:
        """MSH-9 ADT^A04 without ^ADT_A01 is legitimate v2.5; the structure is filled in."""
        text = fixture("adt_a04_two_insurances.hl7").replace("ADT^A04^ADT_A01", "ADT^A04")
        assert handled("", text=text).ack_code == "AA"


class TestCharges:
    def test_an_office_visit_becomes_an_encounter_event_the_codec_encodes(self) -> None:
        """The DFT^P03 with its own IN1 maps to a complete EncounterEvent."""
        outcome = handled("dft_p03_office_visit.hl7")
        assert outcome.ack_code == "AA", outcome.errors
        (event,) = outcome.events
        assert codec_for("claims.EncounterEvent").encode(event)
        assert event["source"] == "hl7"
        assert event["encounter_id"] == "V-20260302-0042"
        assert event["service_date"] == date(2026, 3, 2)
        # Business time is MSH-7 (2026-03-03 17:00), not the moment the message arrived.
        assert event["received_at"] == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
        assert event["place_of_service"] == "11"
        assert event["billing_provider"] == PRACTICE
        assert event["rendering_provider"]["npi"] == "1666023456"
        assert event["referring_provider"] is None  # ordered by the rendering clinician
        assert event["coverage"]["member_id"] == "PPO555000111"

    def test_office_visit_lines_carry_codes_modifiers_units_and_diagnosis_refs(self) -> None:
        """DG1s by priority, dots removed; FT1-7, FT1-26, FT1-10 and FT1-19 per line."""
        (event,) = handled("dft_p03_office_visit.hl7").events
        assert event["diagnoses"] == ["I10", "E119"]
        assert event["procedures"] == [
            {
                "code": "99213",
                "modifiers": ["25"],
                "units": 1,
                "diagnosis_refs": [0, 1],
                "charge_cents": None,
            },
            {
                "code": "36415",
                "modifiers": [],
                "units": 1,
                "diagnosis_refs": [1],
                "charge_cents": None,
            },
            {
                "code": "80053",
                "modifiers": ["QW"],
                "units": 1,
                "diagnosis_refs": [1, 0],
                "charge_cents": None,
            },
        ]

    @pytest.mark.parametrize("name", ["dft_p03_office_visit.hl7", "dft_p03_registered_patient.hl7"])
    def test_mapped_encounters_pass_the_coding_edits(self, name: str) -> None:
        """The coding stage codes the mapped encounter without a hard finding."""
        (event,) = handled(name, registered()).events
        result = code_encounter(event, load_refdata())
        assert [f["edit_id"] for f in result.findings if f["severity"] == HARD] == []
        assert result.coded is not None

    def test_charges_for_a_registered_patient_use_the_coverage_on_file(self) -> None:
        """A DFT without IN1 bills the registration's coverages; PV1-8 is the referring doctor."""
        (event,) = handled("dft_p03_registered_patient.hl7", registered()).events
        assert event["coverage"]["member_id"] == "PPO123456789"
        assert [c["payer_id"] for c in event["other_coverages"]] == ["HMO-SIM"]
        assert event["referring_provider"]["npi"] == "1777034566"
        assert event["procedures"][1] == {
            "code": "87880",
            "modifiers": ["QW"],
            "units": 2,
            "diagnosis_refs": [0],
            "charge_cents": None,
        }

    def test_charges_for_an_unregistered_patient_without_insurance_are_refused(self) -> None:
        """No registration on file and no IN1: AE 204 at PID-3, no event."""
        outcome = handled("dft_p03_registered_patient.hl7")
        assert outcome.ack_code == "AE"
        assert outcome.events == []
        assert [(e.location, e.code) for e in outcome.details] == [("PID^1^3", "204")]

    def test_the_same_message_twice_gives_the_same_event_id(self) -> None:
        """The event id depends on MSH-4 and MSH-10 only, not on when it arrived."""
        first = handled("dft_p03_office_visit.hl7").events[0]
        again = map_message(
            fixture("dft_p03_office_visit.hl7"), {}, FEED, datetime(2026, 4, 1, tzinfo=UTC)
        ).events[0]
        resent = handled(
            "", text=fixture("dft_p03_office_visit.hl7").replace("CHG-1001", "CHG-1001R")
        ).events[0]
        assert first["event_id"] == again["event_id"]
        assert resent["event_id"] != first["event_id"]
        assert resent["encounter_id"] == first["encounter_id"]

    def test_the_control_id_is_the_encounter_id_without_a_visit_number(self) -> None:
        """Without PV1-19 the encounter id is MSH-10."""
        text = fixture("dft_p03_office_visit.hl7").replace(
            "V-20260302-0042^^^SPRINGFIELD_FM^VN", ""
        )
        (event,) = handled("", text=text).events
        assert event["encounter_id"] == "CHG-1001"

    def test_map_dft_gives_the_event_or_the_errors(self) -> None:
        """map_dft is the DFT mapping on its own: an event, or None and the errors."""
        good = map_dft(fixture("dft_p03_office_visit.hl7"), {}, FEED, AT)
        bad = map_dft(fixture("dft_p03_unknown_payer.hl7"), {}, FEED, AT)
        assert good.event is not None
        assert good.errors == []
        assert bad.event is None
        assert [e.location for e in bad.errors] == ["IN1^1^3"]

    def test_lines_on_different_dates_are_refused(self) -> None:
        """One DFT^P03 is one encounter with one date of service (FT1-4)."""
        text = fixture("dft_p03_office_visit.hl7").replace(
            "FT1|3|||20260302094500", "FT1|3|||20260303094500"
        )
        outcome = handled("", text=text)
        assert outcome.ack_code == "AE"
        assert [e.location for e in outcome.details] == ["FT1^3^4"]


class TestAcknowledgements:
    def test_an_accepted_message_is_acknowledged_aa_from_the_receiver(self) -> None:
        """MSH swaps sender and receiver, MSH-9 is ACK^P03^ACK, MSA echoes MSH-10."""
        outcome = handled("dft_p03_office_visit.hl7")
        (msh,) = ack_segments(outcome.ack, "MSH")
        assert msh[2:6] == ["CLAIMS", "BILLING", "EHR_BILLING", "SPRINGFIELD_FM"]
        assert msh[8] == "ACK^P03^ACK"
        assert msh[11] == "2.5"
        assert ack_segments(outcome.ack, "MSA") == [["MSA", "AA", "CHG-1001"]]
        assert ack_segments(outcome.ack, "ERR") == []
        assert msh[9] == ack_segments(handled("dft_p03_office_visit.hl7").ack, "MSH")[0][9]

    # The ACK of a non-HL7 message is left out: it has no MSH-10 for MSA-2 to echo.
    @pytest.mark.parametrize(
        "name",
        ["dft_p03_office_visit.hl7", "dft_p03_icd9_diagnosis.hl7", "oru_r01_unsupported.hl7"],
    )
    def test_every_ack_is_a_valid_hl7_v25_ack(self, name: str) -> None:
        """hl7apy validates the ACK against the v2.5 ACK structure in STRICT mode."""
        ack = handled(name).ack
        parsed = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT)
        assert parsed.validate()
        assert parsed.name == "ACK"

    @pytest.mark.parametrize(
        ("name", "location", "code"),
        [
            ("dft_p03_missing_rendering_npi.hl7", "FT1^1^20", "101"),
            ("dft_p03_icd9_diagnosis.hl7", "DG1^2^3", "103"),
            ("dft_p03_unknown_payer.hl7", "IN1^1^3", "103"),
        ],
    )
    def test_content_errors_are_ae_with_the_field_named(
        self, name: str, location: str, code: str
    ) -> None:
        """A message understood but unusable is AE with ERR-2 and ERR-3 locating the problem."""
        outcome = handled(name)
        assert outcome.ack_code == "AE"
        assert outcome.events == []
        (msa,) = ack_segments(outcome.ack, "MSA")
        assert msa[1] == "AE"
        (err,) = ack_segments(outcome.ack, "ERR")
        assert err[2] == location
        assert err[3] == f"{code}^{err[3].split('^')[1]}^HL70357"
        assert err[4] == "E"
        assert err[8]

    def test_a_non_hl7_message_is_rejected(self) -> None:
        """Text without an MSH is AR with a segment sequence error."""
        outcome = handled("garbage.txt")
        assert outcome.ack_code == "AR"
        assert ack_segments(outcome.ack, "MSA") == [["MSA", "AR", ""]]
        assert [e.code for e in outcome.details] == ["100"]

    def test_an_unsupported_message_type_is_rejected_200(self) -> None:
        """ORU^R01 is AR with error 200 at MSH-9."""
        outcome = handled("oru_r01_unsupported.hl7")
        assert outcome.ack_code == "AR"
        (err,) = ack_segments(outcome.ack, "ERR")
        assert err[2] == "MSH^1^9"
        assert err[3].startswith("200^")
        assert ack_segments(outcome.ack, "MSA") == [["MSA", "AR", "LAB-2001"]]

    def test_an_unsupported_trigger_event_is_rejected_201(self) -> None:
        """ADT^A03 (discharge) is a known type with an event this interface does not take."""
        text = fixture("adt_a04_two_insurances.hl7").replace("ADT^A04", "ADT^A03")
        assert [e.code for e in handled("", text=text).details] == ["201"]

    def test_an_unsupported_version_is_rejected_203(self) -> None:
        """An HL7 v2.2 message is AR with error 203 at MSH-12."""
        text = fixture("dft_p03_office_visit.hl7").replace("|P|2.5|", "|P|2.2|")
        outcome = handled("", text=text)
        assert outcome.ack_code == "AR"
        assert [(e.location, e.code) for e in outcome.details] == [("MSH^1^12", "203")]

    def test_a_field_the_standard_requires_is_named_by_strict_validation(self) -> None:
        """hl7apy STRICT finds PID-3 missing: AE 101 at PID^1^3."""
        text = fixture("dft_p03_office_visit.hl7").replace("HL7T00002^^^SPRINGFIELD_FM^MR", "")
        outcome = handled("", text=text)
        assert outcome.ack_code == "AE"
        assert [(e.location, e.code) for e in outcome.details] == [("PID^1^3", "101")]

    def test_a_missing_field_is_located_in_the_segment_occurrence_that_lacks_it(self) -> None:
        """The second IN1 without its insurance company id is IN1^2^3."""
        text = fixture("adt_a04_two_insurances.hl7").replace("|HMO-SIM|", "||")
        assert [e.location for e in handled("", text=text).details] == ["IN1^2^3"]

    def test_a_clinician_npi_with_a_wrong_check_digit_is_a_data_type_error(self) -> None:
        """An NPI failing its Luhn check is AE 102 at FT1-20, once per line."""
        text = fixture("dft_p03_registered_patient.hl7").replace("1666023456", "1666023457")
        outcome = handled("", registered(), text)
        assert [(e.location, e.code) for e in outcome.details] == [
            ("FT1^1^20", "102"),
            ("FT1^2^20", "102"),
            ("PV1^1^7", "102"),
        ]

    def test_a_data_type_error_is_located_without_its_value(self) -> None:
        """A birth date that is not an HL7 date is AE 102 at PID-7."""
        text = fixture("dft_p03_office_visit.hl7").replace("|19670521|M|", "|1967-05-21|M|")
        outcome = handled("", text=text)
        assert [(e.location, e.code) for e in outcome.details] == [("PID^1^7", "102")]
        assert "1967" not in outcome.ack

    def test_a_missing_birth_date_is_reported_as_such(self) -> None:
        """PID-7 empty: the reason says the birth date is missing, not what it was."""
        text = fixture("dft_p03_office_visit.hl7").replace("|19670521|M|", "||M|")
        (error,) = handled("", text=text).details
        assert error.location == "PID^1^7"
        assert error.reason == "PID-7 (patient birth date) is missing or not a date"

    def test_a_header_without_a_required_field_is_rejected(self) -> None:
        """A required MSH field missing (MSH-7) is AR: the header itself is at fault."""
        text = fixture("dft_p03_office_visit.hl7").replace("|20260303170000||DFT", "|||DFT")
        outcome = handled("", text=text)
        assert outcome.ack_code == "AR"
        assert [e.location for e in outcome.details] == ["MSH^1^7"]


class TestNoPhi:
    @pytest.mark.parametrize(
        "text",
        [
            fixture("dft_p03_missing_rendering_npi.hl7"),
            fixture("dft_p03_icd9_diagnosis.hl7"),
            fixture("dft_p03_unknown_payer.hl7"),
            fixture("dft_p03_registered_patient.hl7"),
            fixture("dft_p03_office_visit.hl7").replace("|19670521|M|", "|1967-05-21|M|"),
            fixture("dft_p03_office_visit.hl7").replace("62702^USA", "6270^USA"),
            fixture("adt_a04_two_insurances.hl7").replace("TESTPATIENT^JORDAN^B", ""),
            fixture("adt_a04_two_insurances.hl7").replace("|19790911|", "|1979091|"),
            fixture("adt_a04_two_insurances.hl7").replace("|SPO^Spouse^HL70063|", "||"),
        ],
    )
    def test_errors_and_acks_never_carry_patient_data(self, text: str) -> None:
        """Names, birth dates, member ids and addresses stay out of errors and ACKs."""
        outcome = handled("", text=text)
        assert outcome.errors
        said = " ".join(outcome.errors) + outcome.ack
        assert [value for value in PHI if value in said] == []


class TestSplitting:
    def test_a_file_of_messages_splits_at_each_msh(self) -> None:
        """Messages one after another, LF between segments, split at every MSH."""
        data = (
            fixture("adt_a04_two_insurances.hl7") + "\n" + fixture("dft_p03_registered_patient.hl7")
        )
        messages = split_messages(data)
        assert [m.split("|")[9] for m in messages] == ["REG-0001", "CHG-1002"]
        assert all(m.endswith("\r") and "\n" not in m for m in messages)
        assert messages[0].count("\r") == 7

    def test_an_mllp_framed_stream_splits_per_frame(self) -> None:
        """<VT>message<FS><CR> frames, CRLF segment ends and batch envelopes are handled."""
        body = [
            fixture(n).replace("\n", "\r\n")
            for n in ("adt_a04_two_insurances.hl7", "dft_p03_office_visit.hl7")
        ]
        data = "".join(f"\x0b{b}\x1c\r" for b in body).encode()
        assert [m.split("|")[9] for m in split_messages(data)] == ["REG-0001", "CHG-1001"]
        assert len(split_messages(b"noise outside a frame\x0b" + data)) == 2
        batch = "FHS|^~\\&\rBHS|^~\\&\r" + fixture("garbage.txt") + "BTS|1\rFTS|1\r"
        assert split_messages(batch) == [
            "Hello, this is not an HL7 message.\rPlease call the billing office.\r"
        ]

    def test_a_stream_carries_registrations_on_to_later_charges(self) -> None:
        """map_stream applies the A04 before the DFT that relies on it."""
        data = fixture("adt_a04_two_insurances.hl7") + fixture("dft_p03_registered_patient.hl7")
        outcomes = list(map_stream(data, FEED, AT))
        assert [o.ack_code for o in outcomes] == ["AA", "AA"]
        assert outcomes[1].events[0]["coverage"]["payer_id"] == "PPO-SIM"
        assert outcomes[1].text.startswith("MSH|")


def test_message_time_reads_msh7_with_its_offset() -> None:
    """MSH-7 20260303120000-0500 is 17:00 UTC; a bad MSH-7 gives None."""
    from pipeline.ingest.hl7 import message_time, read_message

    text = (FIXTURES / "dft_p03_office_visit.hl7").read_text()
    shifted = text.replace("20260303170000", "20260303120000-0500", 1)
    assert message_time(read_message(shifted)) == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    assert message_time(read_message(text.replace("20260303170000", "SOON", 1))) is None


class TestBillingProvider:
    def test_a_sending_facility_with_no_billing_provider_is_refused(self) -> None:
        """No directory entry for MSH-4 and none given for the feed: refused, never defaulted."""
        outcome = map_message(fixture("dft_p03_office_visit.hl7"), {}, FeedDirectory(), AT)
        assert outcome.events == []
        assert any(
            "MSH-4 (sending facility) 'SPRINGFIELD_FM' names no billing provider" in e
            and "CLAIMS_PROVIDER_DIRECTORY" in e
            for e in outcome.errors
        )

    def test_the_directory_entry_of_the_sending_facility_bills(self) -> None:
        billing = load_directory(Path(__file__).parent.parent / "fixtures" / "providers.json")
        outcome = map_message(fixture("dft_p03_office_visit.hl7"), {}, billing, AT)
        (event,) = outcome.events
        assert event["billing_provider"]["npi"] == "1432765893"
        assert event["billing_provider"]["address"]["postal_code"] == "627011234"


class TestOlderVersions:
    """v2.3 and v2.3.1 DFT feeds: the same fields, validated against their own version."""

    def as_version(self, version: str, *, structure: bool) -> str:
        text = fixture("dft_p03_office_visit.hl7").replace("|P|2.5|", f"|P|{version}|", 1)
        return text if structure else text.replace("^DFT_P03|", "|", 1)

    def test_v2_3_1_maps_as_v2_5_does(self) -> None:
        (newer,) = handled("dft_p03_office_visit.hl7").events
        (older,) = handled("", text=self.as_version("2.3.1", structure=True)).events
        assert older["procedures"] == newer["procedures"]
        assert older["diagnoses"] == newer["diagnoses"]
        assert older["coverage"] == newer["coverage"]

    def test_v2_3_has_no_ft1_26_and_says_so(self) -> None:
        outcome = handled("", text=self.as_version("2.3", structure=False))
        assert outcome.events == []
        assert any("FT1-26 is beyond the 25 fields HL7 v2.3 defines" in e for e in outcome.errors)

    def test_v2_3_without_modifiers_maps(self) -> None:
        """As a v2.3 feed sends it: no FT1-26, and IN1-17 (relationship) a bare code."""

        def as_v2_3(line: str) -> str:
            fields = line.split("|")
            if fields[0] == "FT1":
                return "|".join(fields[:26])
            if fields[0] == "IN1" and len(fields) > 17:
                fields[17] = fields[17].split("^")[0]
            return "|".join(fields)

        text = self.as_version("2.3", structure=False)
        lines = [as_v2_3(line) for line in text.split("\n")]
        (event,) = handled("", text="\n".join(lines)).events
        assert [p["code"] for p in event["procedures"]]
        assert all(p["modifiers"] == [] for p in event["procedures"])

    def test_v2_2_is_still_refused(self) -> None:
        outcome = handled("", text=self.as_version("2.2", structure=False))
        assert any("MSH-12 (version id) is not 2.3, 2.3.1, 2.5, 2.5.1" in e for e in outcome.errors)


class TestEhrCharges:
    def test_ft1_11_is_the_lines_charge(self) -> None:
        lines = fixture("dft_p03_office_visit.hl7").split("\n")
        for i, line in enumerate(lines):
            if line.startswith("FT1|1|"):
                fields = line.split("|")
                fields[11] = "125.50^EX"
                lines[i] = "|".join(fields)
        (event,) = handled("", text="\n".join(lines)).events
        assert [p["charge_cents"] for p in event["procedures"]] == [12550, None, None]

    def test_an_ft1_11_that_is_not_money_is_named(self) -> None:
        lines = fixture("dft_p03_office_visit.hl7").split("\n")
        for i, line in enumerate(lines):
            if line.startswith("FT1|2|"):
                fields = line.split("|")
                fields[11] = "-5.00"
                lines[i] = "|".join(fields)
        outcome = handled("", text="\n".join(lines))
        assert outcome.events == []
        assert any("FT1-11 (transaction amount - extended) is not" in e for e in outcome.errors)
