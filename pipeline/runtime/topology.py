"""The pipeline's stages in flow order: what the faust app, the runner and the dry run run.

Each stage declares its input, its outputs, whether it keeps member state,
whether it is an entry (read from Kafka in the fused topology too) and any
sweep; the runner reads those declarations and knows no stage by name.
"""

from __future__ import annotations

from processors.adjudication.stage import STAGE as ADJUDICATION
from processors.claims.stage import STAGE as CLAIMS
from processors.coding.stage import STAGE as CODING
from processors.denials.resubmit import STAGE as REWORK
from processors.denials.stage import STAGE as DENIALS
from processors.stage import Stage

STAGES: tuple[Stage, ...] = (CODING, CLAIMS, ADJUDICATION, DENIALS, REWORK)
# What the fused topology consumes: new encounters, and actions on rework items (from
# people, and automatic corrections that move a claim to another member's partition).
ENTRY_STAGES: tuple[Stage, ...] = tuple(stage for stage in STAGES if stage.entry)
STAGE_BY_INPUT = {stage.input.name: stage for stage in STAGES}
STAGE_BY_NAME = {stage.name: stage for stage in STAGES}
