"""Topic registry: every topic of the pipeline, with its key, value schema and policy.

The faust app, `claims topics create`, the feed, the CLI tools and the tests all
take topic names and settings from here, so a topic is declared exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, what its records are and how Kafka keeps them."""

    name: str
    key: str
    value_schema: str
    cleanup_policy: str = "delete"
    retention_ms: int = 7 * DAY_MS
    description: str = ""

    def full_name(self, prefix: str = "") -> str:
        """Topic name on the cluster, with the deployment's prefix."""
        return f"{prefix}{self.name}"

    def config(self) -> dict[str, str]:
        """Topic-level configuration passed to Kafka at creation."""
        cfg = {"cleanup.policy": self.cleanup_policy}
        if self.cleanup_policy == "delete":
            cfg["retention.ms"] = str(self.retention_ms)
        else:
            cfg["min.compaction.lag.ms"] = "0"
            cfg["segment.ms"] = str(DAY_MS)
        return cfg


EHR_ENCOUNTERS = TopicSpec(
    "ehr.encounters",
    "member key",
    "claims.EncounterEvent",
    retention_ms=365 * DAY_MS,
    description="Encounters released for billing by the EHR; the replay source.",
)
ENCOUNTERS_CODED = TopicSpec(
    "encounters.coded",
    "member key",
    "claims.CodedEncounter",
    description="Encounters that passed the coding edits.",
)
CLAIMS_SUBMITTED = TopicSpec(
    "claims.submitted",
    "member key",
    "claims.Claim",
    description="Claims sent to the payer (originals and replacements).",
)
CLAIMS_REMITTANCE = TopicSpec(
    "claims.remittance",
    "member key",
    "claims.Remittance",
    description="The payer's answers (835 claim payments).",
)
DENIALS_REWORK = TopicSpec(
    "denials.rework",
    "member key",
    "claims.ReworkItem",
    retention_ms=90 * DAY_MS,
    description="Coding holds, scrubber holds and denials for people to work.",
)
REWORK_ACTIONS = TopicSpec(
    "rework.actions",
    "member key",
    "claims.ReworkAction",
    retention_ms=365 * DAY_MS,
    description="What people and automatic corrections did about rework items.",
)
PATIENT_STATEMENTS = TopicSpec(
    "patients.statements",
    "member key",
    "claims.PatientStatement",
    retention_ms=90 * DAY_MS,
    description="What each patient owes after the payer's answer.",
)
CLAIMS_LIFECYCLE = TopicSpec(
    "claims.lifecycle",
    "claim_id",
    "claims.ClaimStatus",
    cleanup_policy="compact",
    description="Current status of every claim, one record per claim once compacted.",
)
DEAD_LETTER = TopicSpec(
    "pipeline.dead-letter",
    "original key",
    "claims.DeadLetter",
    retention_ms=30 * DAY_MS,
    description="Records a stage could not process, with the raw bytes and the reason.",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    EHR_ENCOUNTERS,
    ENCOUNTERS_CODED,
    CLAIMS_SUBMITTED,
    CLAIMS_REMITTANCE,
    DENIALS_REWORK,
    REWORK_ACTIONS,
    PATIENT_STATEMENTS,
    CLAIMS_LIFECYCLE,
    DEAD_LETTER,
)

BY_NAME = {spec.name: spec for spec in ALL_TOPICS}


def member_key(event: dict[str, Any]) -> str:
    """The key of *event* on ehr.encounters: the member id, or the person id for self-pay.

    Every topic up to the remittances is keyed so, and one member's records
    stay on one partition and in order.
    """
    coverage = event["coverage"]
    return str(coverage["member_id"] if coverage else event["patient"]["person_id"])


def member_key_of(spec: TopicSpec, record: dict[str, Any]) -> bytes | None:
    """The partition key a record on *spec* should have carried, read from its content."""
    try:
        if spec is EHR_ENCOUNTERS:
            key = member_key(record)
        elif spec is ENCOUNTERS_CODED:
            key = member_key(record["encounter"])
        elif spec is CLAIMS_SUBMITTED:
            key = record["member_id"]
        else:
            key = record["member_key"]
    except (KeyError, TypeError):
        return None
    return str(key).encode() if key else None
