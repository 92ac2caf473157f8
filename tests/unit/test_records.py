"""Typed records and vocabularies: the TypedDicts equal the .avsc files, the values are members.

The TypedDicts of ``processors.contracts.records`` are checked field by field
against the schemas (names, order, Python types as fastavro decodes them); the
records a dry run publishes carry no key their schema lacks (fastavro would
drop it without a word); every coded value they carry is a member of its
``processors.contracts.vocab`` StrEnum; and a StrEnum member encodes to the
same Avro bytes as its plain string.
"""

from __future__ import annotations

import json
import typing
from collections import defaultdict
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import pytest

from pipeline.ingest.synthetic import generate
from pipeline.kafka.codec import SCHEMAS_DIR, codec_for
from pipeline.runtime.dryrun import Failure, InProcessPipeline
from processors.contracts import records
from processors.contracts.topics import CLAIMS_LIFECYCLE, DENIALS_REWORK, REWORK_ACTIONS
from processors.contracts.vocab import (
    Category,
    Decision,
    ItemAction,
    ItemKind,
    LifecycleStatus,
    Queue,
    Severity,
)
from processors.denials.rules import Route, denial_rules, routing_table
from processors.refdata import load_refdata
from tests.builders import encounter

REFDATA = load_refdata()
PRIMITIVES: dict[str, type] = {
    "string": str,
    "long": int,
    "int": int,
    "boolean": bool,
    "double": float,
    "float": float,
    "bytes": bytes,
}


def schemas() -> dict[str, dict[str, Any]]:
    """Every record schema, by record name."""
    out = {}
    for path in sorted(SCHEMAS_DIR.glob("claims.*.avsc")):
        schema = json.loads(path.read_text())
        out[schema["name"]] = schema
    return out


def python_type(avro: Any) -> Any:
    """The Python type fastavro decodes an Avro type to (records: their TypedDict)."""
    if isinstance(avro, list):
        rest = [python_type(t) for t in avro if t != "null"]
        assert len(rest) == 1, f"unions other than [null, T] are not used: {avro}"
        return rest[0] | None if "null" in avro else rest[0]
    if isinstance(avro, dict):
        logical = avro.get("logicalType")
        if logical == "date":
            return date
        if logical == "timestamp-millis":
            return datetime
        if avro["type"] == "array":
            return list[python_type(avro["items"])]  # type: ignore[misc]
        if avro["type"] == "map":
            return dict[str, python_type(avro["values"])]  # type: ignore[misc]
        return python_type(avro["type"])
    if avro in PRIMITIVES:
        return PRIMITIVES[avro]
    return getattr(records, avro.split(".")[-1])


def differences(schema: dict[str, Any]) -> list[str]:
    """How the TypedDict named like *schema* differs from it (empty when they agree)."""
    typed = getattr(records, schema["name"], None)
    if typed is None:
        return [f"no TypedDict {schema['name']}"]
    hints = typing.get_type_hints(typed)
    fields = [f["name"] for f in schema["fields"]]
    found = []
    if list(hints) != fields:
        found.append(f"{schema['name']}: fields {list(hints)} != schema's {fields}")
    for field in schema["fields"]:
        want = python_type(field["type"])
        got = hints.get(field["name"])
        if got is not None and got != want:
            found.append(f"{schema['name']}.{field['name']}: {got} != {want}")
    if typed.__optional_keys__:
        found.append(f"{schema['name']}: optional keys {sorted(typed.__optional_keys__)}")
    return found


class TestTypedRecords:
    def test_every_schema_has_its_typed_dict_with_the_same_fields_and_types(self) -> None:
        """23 schemas, 23 TypedDicts, field for field."""
        found = schemas()
        assert len(found) == 23
        assert [d for s in found.values() for d in differences(s)] == []
        declared = {
            name
            for name, value in vars(records).items()
            if isinstance(value, type) and typing.is_typeddict(value)
        }
        assert declared == set(found)

    def test_a_schema_change_not_made_in_the_typed_dict_is_found(self) -> None:
        """The comparison can fail: a new field, and a changed type, are both named."""
        schema = schemas()["ClaimStatus"]
        grown = {**schema, "fields": [*schema["fields"], {"name": "note", "type": "string"}]}
        assert any("fields" in d for d in differences(grown))
        retyped = {
            **schema,
            "fields": [
                {**f, "type": "int"} if f["name"] == "payer_id" else f for f in schema["fields"]
            ],
        }
        assert differences(retyped) == [
            "ClaimStatus.payer_id: str | None != <class 'int'>",
        ]

    def test_records_a_dry_run_publishes_carry_no_key_their_schema_lacks(self) -> None:
        """Every record the stages publish for 400 encounters, against its TypedDict."""
        extra: dict[str, set[str]] = defaultdict(set)
        seen = set()
        for out in InProcessPipeline(REFDATA, 2026).run_all(generate(400, 7)):
            assert not isinstance(out, Failure), out
            name = out.topic.value_schema.split(".")[1]
            seen.add(name)
            allowed = set(typing.get_type_hints(getattr(records, name)))
            extra[name] |= set(out.record) - allowed
        assert seen >= {"CodedEncounter", "Claim", "Remittance", "ReworkItem", "ClaimStatus"}
        assert {k: v for k, v in extra.items() if v} == {}


def coded_values(outputs: list[Any]) -> dict[str, set[str]]:
    """The coded values the outputs carry, by field."""
    values: dict[str, set[str]] = defaultdict(set)
    for out in outputs:
        record = out.record
        if out.topic is CLAIMS_LIFECYCLE:
            values["status"].add(record["status"])
        elif out.topic is DENIALS_REWORK:
            for name in ("kind", "queue", "category", "action"):
                values[name].add(record[name])
        elif out.topic is REWORK_ACTIONS:
            values["decision"].add(record["action"])
        for finding in record.get("findings") or ():
            values["severity"].add(finding["severity"])
    return values


VOCABULARIES: dict[str, type[StrEnum]] = {
    "status": LifecycleStatus,
    "kind": ItemKind,
    "queue": Queue,
    "category": Category,
    "action": ItemAction,
    "decision": Decision,
    "severity": Severity,
}


class TestVocabularies:
    def test_every_coded_value_a_dry_run_publishes_is_a_member(self) -> None:
        """1,500 encounters: statuses, kinds, queues, categories, actions and severities."""
        outputs = [
            o
            for o in InProcessPipeline(REFDATA, 2026).run_all(generate(1500, 7))
            if not isinstance(o, Failure)
        ]
        values = coded_values(outputs)
        assert set(values) == set(VOCABULARIES)
        strays = {
            field: sorted(v for v in found if v not in set(VOCABULARIES[field]))
            for field, found in values.items()
        }
        assert {f: s for f, s in strays.items() if s} == {}
        assert {ItemKind.DENIAL, ItemKind.CODING_HOLD} <= values["kind"]

    def test_the_routing_tables_read_through_the_vocabularies(self) -> None:
        """Every route of both CSV files is made of members."""
        routes = [*routing_table().values(), *denial_rules().values()]
        assert routes
        for route in routes:
            assert isinstance(route.category, Category)
            assert isinstance(route.action, ItemAction)
            assert isinstance(route.queue, Queue)

    def test_a_misspelt_queue_in_a_routing_row_is_named(self) -> None:
        row = {
            "category": "eligibility",
            "action": "verify_eligibility",
            "queue": "frontdesk",
            "recovery_percent": "80",
            "suggested_fix": "Check coverage.",
        }
        with pytest.raises(ValueError, match=r"denial_routing.csv: 'frontdesk' is not a valid"):
            Route.from_row(row, "denial_routing.csv")

    @pytest.mark.parametrize("member", [*LifecycleStatus, *ItemKind, *Queue, *Decision])
    def test_a_member_encodes_to_the_bytes_of_its_plain_string(self, member: StrEnum) -> None:
        """The Avro bytes of a record do not depend on whether a value is a member or a str."""
        codec = codec_for(CLAIMS_LIFECYCLE.value_schema)
        record = {
            "claim_id": "C1",
            "encounter_id": "E1",
            "status": member,
            "stage": "coding",
            "at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            "history": [member],
        }
        plain = {**record, "status": str(member.value), "history": [str(member.value)]}
        assert type(plain["status"]) is str
        assert codec.encode(record) == codec.encode(plain)
        assert codec.decode(codec.encode(record))["status"] == member

    def test_a_hold_made_from_an_encounter_carries_members(self) -> None:
        """The coding stage's hold for an encounter with a header-only diagnosis."""
        from processors.coding.stage import STAGE as CODING
        from processors.stage import StageContext

        outputs = CODING.run(b"PPO123456789", encounter(diagnoses=["M545"]), StageContext(REFDATA))
        (hold,) = [o.record for o in outputs if o.topic is DENIALS_REWORK]
        assert hold["kind"] is ItemKind.CODING_HOLD
        assert hold["queue"] is Queue.CODING
