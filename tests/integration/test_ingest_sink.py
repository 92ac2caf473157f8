"""The ingest sink on a real broker: what fits is published, what does not is dead-lettered."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.config import Settings
from pipeline.ingest.sink import IngestSink
from processors.contracts.topics import DEAD_LETTER, EHR_ENCOUNTERS
from tests.builders import encounter, procedure
from tests.integration.test_agents import read


def test_an_event_over_the_record_limit_is_dead_lettered_by_size(
    settings_factory: Callable[..., Settings],
) -> None:
    """Under a 64 KB limit an 8,000-line encounter is dead-lettered OVERSIZE; a small one sent."""
    settings = settings_factory(max_record_bytes=64 * 1024)
    big = encounter(encounter_id="ENC-BIG", procedures=[procedure("99213")] * 8000)
    with IngestSink(settings) as sink:
        sink.encounters([big, encounter(encounter_id="ENC-SMALL")])
    assert (sink.sent, sink.dead) == (1, 1)
    (event,) = read(settings, EHR_ENCOUNTERS, 1)
    assert event["encounter_id"] == "ENC-SMALL"
    (letter,) = read(settings, DEAD_LETTER, 1)
    assert (letter["error_type"], letter["record_id"]) == ("OVERSIZE", "ENC-BIG")
    assert letter["value"] is None
    assert letter["value_size"] > 64 * 1024
