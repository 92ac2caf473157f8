"""Schema contracts: registered, documented, and every change backward compatible."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from pipeline.kafka.codec import SCHEMAS_DIR, SchemaRegistry, load_expanded
from processors.contracts.topics import ALL_TOPICS

# A deliberate incompatible change is listed here with the reason; the test then names it.
KNOWN_BREAKS: dict[tuple[str, int], str] = {}

SUBJECTS = sorted({t.value_schema for t in ALL_TOPICS})


def compatibility(reader: dict[str, Any], writer: dict[str, Any]) -> tuple[bool, str]:
    """Whether a reader with *reader* can read data written with *writer*, and why not."""
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    ok = result.compatibility is SchemaCompatibilityType.compatible
    return ok, "; ".join(str(m) for m in result.messages)


def test_every_topic_value_schema_is_registered() -> None:
    """Each topic's value schema has at least one registered version."""
    registry = SchemaRegistry()
    for subject in SUBJECTS:
        assert registry.versions(subject), f"{subject} is not registered"


def test_schema_files_match_their_newest_registered_version() -> None:
    """A changed .avsc must be registered (`claims schemas register`) before it is used."""
    assert SchemaRegistry().pending_changes() == []


@pytest.mark.parametrize("subject", SUBJECTS)
def test_each_registered_version_reads_the_one_before(subject: str) -> None:
    """Every version of a subject can read records written with the previous version."""
    versions = SchemaRegistry().versions(subject)
    for older, newer in itertools.pairwise(versions):
        ok, why = compatibility(newer.schema, older.schema)
        if (subject, newer.version) in KNOWN_BREAKS:
            assert not ok, f"{subject} v{newer.version} is listed as a break but is compatible"
            continue
        assert ok, f"{subject} v{newer.version} cannot read v{older.version}: {why}"


@pytest.mark.parametrize("subject", SUBJECTS)
def test_current_schema_reads_the_newest_registered_version(subject: str) -> None:
    """The working copy of each schema stays backward compatible with what is registered."""
    ok, why = compatibility(load_expanded(subject), SchemaRegistry().latest(subject).schema)
    assert ok, f"schemas/{subject}.avsc cannot read its registered version: {why}"


def test_the_checker_catches_a_new_required_field() -> None:
    """Adding a field without a default is reported as incompatible (the check can fail)."""
    old = load_expanded("claims.ClaimStatus")
    new = {**old, "fields": [*old["fields"], {"name": "extra", "type": "string"}]}
    ok, why = compatibility(new, old)
    assert not ok
    assert "extra" in why


def all_fields(node: Any) -> list[dict[str, Any]]:
    """Every field of every record inside *node*."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "record":
            found.extend(node["fields"])
        for value in node.values():
            found.extend(all_fields(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(all_fields(item))
    return found


@pytest.mark.parametrize("path", sorted(SCHEMAS_DIR.glob("*.avsc")), ids=lambda p: p.name)
def test_every_record_and_field_is_documented(path: Path) -> None:
    """Schemas say what each field means: a doc on every record and field."""
    schema = json.loads(path.read_text())
    assert schema.get("doc"), f"{path.name} has no record doc"
    assert schema["name"] == path.name.removesuffix(".avsc").split(".")[-1]
    for field in all_fields(schema):
        assert field.get("doc"), f"{path.name}: field {field['name']} has no doc"


def test_amounts_are_integer_cents() -> None:
    """Every money field is a long named *_cents (no floats for money); one an EHR may leave
    out is a long or null (``charge_cents``, not sent), never a number of another kind."""
    for path in SCHEMAS_DIR.glob("*.avsc"):
        for field in all_fields(json.loads(path.read_text())):
            assert field["type"] not in ("float", "double"), f"{path.name}: {field['name']}"
            if field["name"].endswith("_cents"):
                assert field["type"] in ("long", ["null", "long"]), f"{path.name}: {field['name']}"
