"""The Avro codec and the file-based schema registry."""

from __future__ import annotations

import io
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest

from pipeline.kafka.codec import AvroCodec, DecodeError, SchemaRegistry, codec_for, load_expanded
from tests.builders import encounter


def test_encoding_uses_confluent_framing_with_the_registered_id() -> None:
    """Encoded bytes start with magic 0 and the subject's newest schema id, big-endian."""
    codec = codec_for("claims.EncounterEvent")
    data = codec.encode(encounter())
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == codec.schema_id


def test_body_is_plain_avro_readable_by_any_avro_library() -> None:
    """After the 5-byte header the body is standard Avro binary of the schema."""
    codec = codec_for("claims.EncounterEvent")
    data = codec.encode(encounter())
    schema = fastavro.parse_schema(load_expanded("claims.EncounterEvent"))
    assert fastavro.schemaless_reader(io.BytesIO(data[5:]), schema) == encounter()


def test_round_trip_is_exact_and_deterministic() -> None:
    """The same record gives the same bytes, and decodes back to itself."""
    codec = codec_for("claims.EncounterEvent")
    assert codec.encode(encounter()) == codec.encode(encounter())
    assert codec.decode(codec.encode(encounter())) == encounter()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b'{"json": true}', "not Confluent-framed"),
        (b"\x00\x00\x00\x00\x05\x02", "not readable"),
        (b"\x00\x00\x00\x03\xe7xx", "not in the registry"),
    ],
)
def test_bad_bytes_raise_decode_error_with_a_reason(data: bytes, says: str) -> None:
    """Unreadable values raise DecodeError saying what is wrong."""
    with pytest.raises(DecodeError, match=re.escape(says)):
        codec_for("claims.EncounterEvent").decode(data)


def test_record_missing_a_field_fails_to_encode_naming_the_schema() -> None:
    """A record that does not fit its schema is refused with the subject named."""
    bad = encounter()
    del bad["patient"]
    with pytest.raises(ValueError, match=r"claims\.EncounterEvent"):
        codec_for("claims.EncounterEvent").encode(bad)


def test_a_value_of_another_subject_is_refused() -> None:
    """A Claim codec does not silently read an EncounterEvent."""
    data = codec_for("claims.EncounterEvent").encode(encounter())
    with pytest.raises(DecodeError, match=r"expected claims\.Claim"):
        codec_for("claims.Claim").decode(data)


def test_registering_a_compatible_change_adds_a_version_and_old_data_stays_readable(
    tmp_path: Path,
) -> None:
    """A new optional field gets a new id; bytes written with the old id decode with the default."""
    from pipeline.kafka.codec import SCHEMAS_DIR

    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    registry = SchemaRegistry(schemas)
    old_codec = AvroCodec(registry, "claims.ClaimStatus")
    latest = registry.latest("claims.ClaimStatus").version
    status = {
        "claim_id": "C1",
        "encounter_id": "E1",
        "status": "PAID",
        "stage": "denials",
        "at": datetime(2026, 1, 1, tzinfo=UTC),
        "charge_cents": 100,
        "paid_cents": 80,
        "patient_responsibility_cents": 20,
        "payer_id": None,
        "detail": None,
        "history": [],
    }
    old_bytes = old_codec.encode(status)

    path = schemas / "claims.ClaimStatus.avsc"
    text = path.read_text().replace(
        '"fields": [',
        '"fields": [\n    {"name": "note", "type": ["null", "string"], "default": null, '
        '"doc": "A note."},',
        1,
    )
    path.write_text(text)
    assert registry.pending_changes() == ["claims.ClaimStatus"]
    registered, created = registry.register("claims.ClaimStatus")
    assert created
    assert registered.version == latest + 1
    assert registry.register("claims.ClaimStatus")[1] is False

    reloaded = SchemaRegistry(schemas)
    new_codec = AvroCodec(reloaded, "claims.ClaimStatus")
    assert new_codec.schema_id == registered.schema_id != old_codec.schema_id
    assert new_codec.decode(old_bytes) == {**status, "note": None}


def test_encode_errors_never_quote_field_values() -> None:
    """A wrong value (here a name where coverage belongs) is not echoed into the error."""
    bad = encounter(coverage="Rivera Ana 1980-03-04")
    with pytest.raises(ValueError, match="does not fit its schema") as caught:
        codec_for("claims.EncounterEvent").encode(bad)
    assert "Rivera" not in str(caught.value)


def test_encode_errors_name_the_field_when_they_can() -> None:
    """A wrong type on a nested field is reported with the field's path, not its value."""
    bad = encounter()
    bad["patient"]["last_name"] = 5
    with pytest.raises(ValueError, match="last_name on field patient"):
        codec_for("claims.EncounterEvent").encode(bad)
