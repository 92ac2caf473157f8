"""The demonstration practice, billed as the billing provider of the synthetic feed.

The ingest adapters fall back to it for an encounter that names no billing
provider (``--billing-provider`` names another).
"""

from __future__ import annotations

from typing import Any

from processors.npi import npi_check_digit

PRACTICE_NAME = "Maple Grove Family Medicine"
PRACTICE_NPI = "154873201" + str(npi_check_digit("154873201"))
PRACTICE_TIN = "314987652"
PRACTICE_TAXONOMY = "207Q00000X"  # family medicine
# The 837P requires the billing provider's full nine-digit ZIP code.
PRACTICE_ADDRESS: dict[str, Any] = {
    "line1": "2400 N High St",
    "line2": "Suite 200",
    "city": "Columbus",
    "state": "OH",
    "postal_code": "432021005",
}


def practice_record() -> dict[str, Any]:
    """The demonstration practice as a claims.Provider record."""
    return {
        "npi": PRACTICE_NPI,
        "entity_type": "2",
        "name": PRACTICE_NAME,
        "first_name": None,
        "taxonomy": PRACTICE_TAXONOMY,
        "tin": PRACTICE_TIN,
        "address": dict(PRACTICE_ADDRESS),
    }
