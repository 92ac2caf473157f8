"""Avro codec with the Confluent wire format, over a schema registry kept in files.

Every value on the pipeline's topics is ``0x00`` + a 4-byte big-endian schema id +
the Avro binary body, so any tool that speaks the Confluent framing reads it.

The registry is ``schemas/registry.json``: each registered schema version has a
global id and a frozen, fully expanded copy under ``schemas/registry/``. Subjects
follow the record-name strategy (the subject is the record's full name). Writers
always use the newest registered version; readers decode with the writer's
version named in the frame and resolve to the current schema, which is how old
records on a topic stay readable after a schema change.

fastavro does the encoding and decoding: it is byte-identical to the apache
``avro`` package and about ten times faster here. ``avro`` is kept for its schema
compatibility checker (see the tests).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import fastavro.schema

from pipeline.config import PROJECT_ROOT

SCHEMAS_DIR = PROJECT_ROOT / "schemas"
MAGIC = 0
_HEADER = struct.Struct(">bI")

Record = dict[str, Any]


class SchemaError(Exception):
    """A schema is missing, unregistered or changed without being registered."""


class DecodeError(ValueError):
    """Bytes that are not a readable record of the expected schema."""


def load_expanded(name: str, schemas_dir: Path = SCHEMAS_DIR) -> dict[str, Any]:
    """The schema *name* (e.g. ``claims.Claim``) with every named type it uses inlined."""
    path = schemas_dir / f"{name}.avsc"
    if not path.exists():
        raise SchemaError(f"no schema file {path}")
    parsed = fastavro.schema.load_schema(str(path), _write_hint=False)
    expanded: dict[str, Any] = _define_once(fastavro.schema.expand_schema(parsed), set())
    return expanded


def _define_once(node: Any, defined: set[str]) -> Any:
    """Keep the first definition of each named type and refer to it by name after that.

    fastavro's ``expand_schema`` inlines a named type at every use, which Avro
    forbids (a name may be defined once per schema).
    """
    if isinstance(node, list):
        return [_define_once(item, defined) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind in ("record", "enum", "fixed"):
        name = node["name"]
        if "." not in name:
            name = f"{node.get('namespace', '')}.{name}"
        if name in defined:
            return name
        defined.add(name)
        if kind == "record":
            fields = [{**f, "type": _define_once(f["type"], defined)} for f in node["fields"]]
            return {**node, "fields": fields}
        return node
    if kind == "array":
        return {**node, "items": _define_once(node["items"], defined)}
    if kind == "map":
        return {**node, "values": _define_once(node["values"], defined)}
    if isinstance(kind, (dict, list)):
        return {**node, "type": _define_once(kind, defined)}
    return node


def canonical_json(schema: dict[str, Any]) -> str:
    """Stable text of a schema, for comparing versions (docs included)."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def fingerprint(schema: dict[str, Any]) -> str:
    """SHA-256 of the schema's canonical text."""
    return hashlib.sha256(canonical_json(schema).encode()).hexdigest()


# fastavro messages that name fields but never quote values.
_SAFE_MESSAGES = (
    re.compile(r"^no value and no default for [\w.]+$"),
    re.compile(r"^must be \w+( on field \w+)+$"),
)


def _safe_reason(exc: Exception) -> str:
    """fastavro's reason when it names only fields; otherwise a generic one.

    Some fastavro messages quote the offending value, which may be patient data.
    """
    text = str(exc)
    if any(p.match(text) for p in _SAFE_MESSAGES):
        return text
    return f"a field is missing or has the wrong type ({type(exc).__name__})"


@dataclass(frozen=True)
class RegisteredSchema:
    """One registered version of one subject."""

    schema_id: int
    subject: str
    version: int
    schema: dict[str, Any]


class SchemaRegistry:
    """The file-based registry under ``schemas/``."""

    def __init__(self, schemas_dir: Path = SCHEMAS_DIR) -> None:
        self.schemas_dir = schemas_dir
        self.index_path = schemas_dir / "registry.json"
        self._by_id: dict[int, RegisteredSchema] = {}
        self._subjects: dict[str, list[int]] = {}
        self._parsed: dict[int, Any] = {}
        self._load()

    def _load(self) -> None:
        if not self.index_path.exists():
            return
        index = json.loads(self.index_path.read_text())
        for subject, ids in index["subjects"].items():
            self._subjects[subject] = list(ids)
            for version, schema_id in enumerate(ids, start=1):
                snapshot = self.schemas_dir / "registry" / f"{schema_id}.avsc"
                schema = json.loads(snapshot.read_text())
                self._by_id[schema_id] = RegisteredSchema(schema_id, subject, version, schema)

    @property
    def subjects(self) -> list[str]:
        """Registered subjects (record full names)."""
        return sorted(self._subjects)

    def versions(self, subject: str) -> list[RegisteredSchema]:
        """Every registered version of *subject*, oldest first."""
        return [self._by_id[i] for i in self._subjects.get(subject, [])]

    def latest(self, subject: str) -> RegisteredSchema:
        """The newest registered version of *subject*, which writers use."""
        ids = self._subjects.get(subject)
        if not ids:
            raise SchemaError(
                f"{subject} is not registered; run `claims schemas register` after adding "
                f"schemas/{subject}.avsc"
            )
        return self._by_id[ids[-1]]

    def by_id(self, schema_id: int) -> RegisteredSchema:
        """The schema version with global id *schema_id*."""
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise DecodeError(f"schema id {schema_id} is not in the registry") from None

    def parsed(self, schema_id: int) -> Any:
        """fastavro's parsed form of schema *schema_id*, cached."""
        found = self._parsed.get(schema_id)
        if found is None:
            found = fastavro.parse_schema(self.by_id(schema_id).schema)
            self._parsed[schema_id] = found
        return found

    def pending_changes(self) -> list[str]:
        """Subjects whose .avsc differs from their newest registered version."""
        changed = []
        for subject in self.subjects:
            current = load_expanded(subject, self.schemas_dir)
            if fingerprint(current) != fingerprint(self.latest(subject).schema):
                changed.append(subject)
        return changed

    def register(self, subject: str) -> tuple[RegisteredSchema, bool]:
        """Register the current .avsc of *subject* if it changed; returns (version, created)."""
        current = load_expanded(subject, self.schemas_dir)
        ids = self._subjects.get(subject, [])
        if ids and fingerprint(self._by_id[ids[-1]].schema) == fingerprint(current):
            return self._by_id[ids[-1]], False
        schema_id = max(self._by_id, default=0) + 1
        registered = RegisteredSchema(schema_id, subject, len(ids) + 1, current)
        (self.schemas_dir / "registry").mkdir(exist_ok=True)
        snapshot = self.schemas_dir / "registry" / f"{schema_id}.avsc"
        snapshot.write_text(json.dumps(current, indent=2) + "\n")
        self._by_id[schema_id] = registered
        self._subjects[subject] = [*ids, schema_id]
        index = {"subjects": {s: self._subjects[s] for s in sorted(self._subjects)}}
        self.index_path.write_text(json.dumps(index, indent=2) + "\n")
        return registered, True


class AvroCodec:
    """Encodes and decodes one record type in the Confluent framing."""

    def __init__(self, registry: SchemaRegistry, subject: str) -> None:
        self.registry = registry
        self.subject = subject
        latest = registry.latest(subject)
        self.schema_id = latest.schema_id
        self._schema = registry.parsed(latest.schema_id)
        self._header = _HEADER.pack(MAGIC, latest.schema_id)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Frame and encode *record*; raises ValueError naming the bad field."""
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self._schema, record)
        except KeyError as exc:
            raise ValueError(
                f"{self.subject} record does not fit its schema: field {exc} is missing"
            ) from exc
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{self.subject} record does not fit its schema: {_safe_reason(exc)}"
            ) from exc
        return buf.getvalue()

    def decode(self, data: bytes | None) -> Record:
        """Decode framed bytes into a record of the current schema; raises DecodeError."""
        if not data:
            raise DecodeError(f"empty value where a {self.subject} record was expected")
        if len(data) < _HEADER.size or data[0] != MAGIC:
            raise DecodeError(
                f"value is not Confluent-framed Avro (first byte 0x{data[0]:02x}, expected "
                f"0x00); producers must write {self.subject} with the schema registry framing"
            )
        _, schema_id = _HEADER.unpack_from(data)
        writer = self.registry.parsed(schema_id)
        reader = None if schema_id == self.schema_id else self._schema
        if schema_id != self.schema_id and self.registry.by_id(schema_id).subject != self.subject:
            raise DecodeError(
                f"value was written as {self.registry.by_id(schema_id).subject} "
                f"(schema id {schema_id}), expected {self.subject}"
            )
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), writer, reader)
        except Exception as exc:
            raise DecodeError(
                f"{self.subject} body is not readable with schema id {schema_id}: "
                f"{type(exc).__name__}"
            ) from exc
        if not isinstance(record, dict):
            raise DecodeError(f"{self.subject} body did not decode to a record")
        return record


_DEFAULT_REGISTRY: SchemaRegistry | None = None


def default_registry() -> SchemaRegistry:
    """The project's registry, loaded once per process."""
    global _DEFAULT_REGISTRY  # noqa: PLW0603 - one registry per process, loaded lazily
    if _DEFAULT_REGISTRY is None:
        _DEFAULT_REGISTRY = SchemaRegistry()
    return _DEFAULT_REGISTRY


def codec_for(subject: str) -> AvroCodec:
    """A codec for *subject* over the project's registry."""
    return AvroCodec(default_registry(), subject)
