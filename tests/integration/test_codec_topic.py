"""The Avro codec through a real topic: bytes written by one client are read back by another."""

from __future__ import annotations

from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer

from pipeline.config import Settings
from pipeline.kafka.codec import codec_for
from processors.contracts.topics import EHR_ENCOUNTERS
from tests.builders import encounter


def test_encounter_round_trips_through_a_topic(settings_factory: Callable[..., Settings]) -> None:
    """An EncounterEvent encoded, sent, consumed and decoded equals the original."""
    settings = settings_factory()
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    topic = EHR_ENCOUNTERS.full_name(settings.topic_prefix)
    sent = [encounter(encounter_id=f"ENC-RT-{i}") for i in range(5)]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap)
    for event in sent:
        producer.send(topic, key=b"member-1", value=codec.encode(event))
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
    )
    raw = []
    for record in consumer:
        raw.append(record.value)
        if len(raw) == len(sent):
            break
    consumer.close()

    assert raw[0][0] == 0, "Confluent framing starts with magic byte 0"
    assert int.from_bytes(raw[0][1:5], "big") == codec.schema_id
    assert [codec.decode(v) for v in raw] == sent
