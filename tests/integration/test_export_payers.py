"""The 835 export names the payer as the settings' payer profiles do (CLAIMS_PAYERS_DIR)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kafka import KafkaProducer

from pipeline.config import Settings
from pipeline.kafka.codec import codec_for
from pipeline.views.exports import export_835
from processors.adjudication.rules import adjudicate
from processors.contracts.topics import CLAIMS_REMITTANCE
from processors.refdata import load_refdata
from tests.builders import built_claim, coverage, payers_dir_with_acme


def test_an_835_of_a_payer_of_the_payers_folder_names_it(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A remittance from ACME-HEALTH, a payer only CLAIMS_PAYERS_DIR holds: its 835 is
    written, N1*PR carrying the profile's name."""
    folder = payers_dir_with_acme(tmp_path / "payers")
    settings = settings_factory(payers_dir=folder)

    claim = built_claim(coverage=coverage("ACME-HEALTH", "ACM000111222"))
    acme = load_refdata(folder).payers["ACME-HEALTH"]
    remittance = adjudicate(claim, acme, None, load_refdata(folder)).remittance
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap)
    producer.send(
        CLAIMS_REMITTANCE.full_name(settings.topic_prefix),
        key=claim["member_id"].encode(),
        value=codec_for(CLAIMS_REMITTANCE.value_schema).encode(remittance),
    )
    producer.flush()
    producer.close()

    (path,) = export_835(settings, tmp_path / "835")
    assert "N1*PR*ACME HEALTH INDEMNITY" in path.read_text()
