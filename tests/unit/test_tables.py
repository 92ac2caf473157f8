"""Analyst tables: Parquet with one schema each, queried with DuckDB as an analyst would."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.ingest.synthetic import generate
from pipeline.runtime.dryrun import Failure, InProcessPipeline
from pipeline.views.tables import SCHEMAS, build_tables, member_ref, write_tables
from processors.adjudication.rules import adjudicate
from processors.contracts.claim import corrected_claim
from processors.contracts.remittance import is_denial
from processors.contracts.topics import CLAIMS_REMITTANCE, CLAIMS_SUBMITTED, DENIALS_REWORK
from processors.memberstate import MemberState
from processors.refdata import load_refdata

REFDATA = load_refdata()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """600 encounters through the stages, one claim replaced, the tables written."""
    pipe = InProcessPipeline(REFDATA, 2026)
    outputs = [o for o in pipe.run_all(generate(600, 23)) if not isinstance(o, Failure)]
    claims = [o.record for o in outputs if o.topic is CLAIMS_SUBMITTED]
    remits = [o.record for o in outputs if o.topic is CLAIMS_REMITTANCE]
    items = [o.record for o in outputs if o.topic is DENIALS_REWORK]
    paid = next(
        (o, r)
        for o in outputs
        if o.topic is CLAIMS_SUBMITTED
        for r in remits
        if r["claim_id"] == o.record["claim_id"]
        and r["paid_cents"] > 0
        and r["payer_id"] == "PPO-SIM"
    )
    original, answer = paid
    filed = datetime.combine(answer["adjudicated_date"] + timedelta(days=5), time(13), UTC)
    replacement = corrected_claim(original.record, "7", answer["payer_claim_control_number"], filed)
    result = adjudicate(
        replacement,
        REFDATA.payers["PPO-SIM"],
        MemberState.load(pipe.state, original.key),
        REFDATA,
        2026,
    )
    claims.append(replacement)
    remits += result.remittances
    out = tmp_path_factory.mktemp("tables")
    files = write_tables(build_tables(claims, remits, items), out, csv=True)
    return {
        "dir": out,
        "files": files,
        "claims": claims,
        "remits": remits,
        "items": items,
        "replaced": original.record,
    }


def query(run: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    """Run *sql* with the tables' folder as the working directory for file names."""
    con = duckdb.connect()
    con.execute(f"SET file_search_path = '{run['dir']}'")
    rows: list[tuple[Any, ...]] = con.execute(sql).fetchall()
    return rows


def test_every_table_is_written_as_parquet_and_csv(run: dict[str, Any]) -> None:
    """Six tables, each as .parquet and .csv, with the documented columns."""
    names = sorted({p.stem for p in run["files"]})
    assert names == sorted(SCHEMAS)
    for name, schema in SCHEMAS.items():
        columns = [
            c[0]
            for c in duckdb.connect()
            .execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [str(run["dir"] / f"{name}.parquet")]
            )
            .fetchall()
        ]
        assert columns == schema.names
    assert {p.suffix for p in run["files"]} == {".parquet", ".csv"}


def test_duckdb_counts_match_the_records(run: dict[str, Any]) -> None:
    """Claims per payer and denied answers, counted in SQL, equal the records' counts."""
    by_payer = dict(query(run, "SELECT payer_id, count(*) FROM 'claims.parquet' GROUP BY 1"))
    assert by_payer == Counter(c["payer_id"] for c in run["claims"])
    denied = query(
        run,
        "SELECT count(*) FROM 'remittances.parquet' WHERE outcome IN ('denied', 'partially_paid')",
    )[0][0]
    assert denied == sum(1 for r in run["remits"] if is_denial(r))
    lines = query(run, "SELECT sum(charge_cents) FROM 'lines.parquet'")[0][0]
    assert lines == sum(c["total_charge_cents"] for c in run["claims"])


def test_adjustments_balance_against_the_remittances(run: dict[str, Any]) -> None:
    """In SQL: charge minus all adjustments equals paid, for every payer's remittance."""
    off = query(
        run,
        """
        SELECT r.remittance_id FROM 'remittances.parquet' r
        LEFT JOIN (SELECT remittance_id, sum(amount_cents) AS adjusted
                   FROM 'adjustments.parquet' GROUP BY 1) a USING (remittance_id)
        WHERE r.payer_id <> 'SELFPAY'
          AND r.total_charge_cents - coalesce(a.adjusted, 0) <> r.paid_cents""",
    )
    assert off == []


def test_lineage_shows_the_original_reversal_and_replacement_with_running_totals(
    run: dict[str, Any],
) -> None:
    """The replaced claim's encounter: original, payment, replacement, reversal, payment."""
    encounter = run["replaced"]["encounter_id"]
    rows = (
        duckdb.connect()
        .execute(
            "SELECT record, paid_cents, cumulative_paid_cents FROM read_parquet(?) "
            "WHERE encounter_id = ? ORDER BY seq",
            [str(run["dir"] / "lineage.parquet"), encounter],
        )
        .fetchall()
    )
    records = [r[0] for r in rows]
    assert records[:2] == ["original", "payment"]
    assert "replacement" in records
    assert "reversal" in records
    assert rows[-1][2] == sum(r[1] for r in rows)
    reversal = next(r for r in rows if r[0] == "reversal")
    assert reversal[1] < 0


def test_no_patient_identifiers_in_the_tables(run: dict[str, Any]) -> None:
    """Member ids appear only as one-way references; names appear nowhere."""
    claim = run["claims"][0]
    text = "".join(p.read_text() for p in run["files"] if p.suffix == ".csv")
    assert claim["member_id"] not in text
    assert claim["patient"]["last_name"] not in text
    assert member_ref(claim["member_id"]) in text


def test_rework_items_table_holds_every_item(run: dict[str, Any]) -> None:
    """One row per rework item, with its queue and codes."""
    rows = dict(query(run, "SELECT kind, count(*) FROM 'rework_items.parquet' GROUP BY 1"))
    assert rows == Counter(i["kind"] for i in {i["rework_id"]: i for i in run["items"]}.values())


def test_file_search_path_points_at_the_folder(run: dict[str, Any]) -> None:
    """The folder holds the files DuckDB reads."""
    assert Path(run["dir"], "claims.parquet").exists()
