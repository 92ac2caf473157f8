"""Claims as every stage reads them: the self-pay payer id and corrected claims."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from processors.ids import stable_id

Record = dict[str, Any]

# The payer id of a claim the patient pays (never sent to a payer).
SELF_PAY_ID = "SELFPAY"


def corrected_claim(
    original: Record,
    frequency_code: str,
    payer_claim_control_number: str,
    created_at: datetime | None = None,
) -> Record:
    """A replacement (7) or void (8) of *original*, referencing the payer's control number.

    Its id is derived from the claim it corrects, so a chain of corrections (and
    the parts of a split claim) never share an id; *created_at* is when it is
    filed (the original's filing time when not given).
    """
    if frequency_code not in ("7", "8"):
        raise ValueError(f"frequency {frequency_code!r}: a corrected claim is 7 or 8")
    return {
        **original,
        "claim_id": stable_id("C", original["claim_id"], frequency_code),
        "frequency_code": frequency_code,
        "original_claim_id": original["claim_id"],
        "payer_claim_control_number": payer_claim_control_number,
        "created_at": created_at or original["created_at"],
        "resubmission": original.get("resubmission", 0) + 1,
    }
