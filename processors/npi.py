"""National Provider Identifier check digit (CMS NPI standard: Luhn over prefix 80840)."""

from __future__ import annotations


def npi_check_digit(first_nine: str) -> int:
    """The tenth digit of an NPI whose first nine digits are *first_nine*."""
    total = 24  # the Luhn contribution of the card-issuer prefix 80840
    for i, ch in enumerate(reversed(first_nine)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def is_valid_npi(npi: str) -> bool:
    """True when *npi* is ten digits, starts with 1 or 2, and its check digit is right."""
    if len(npi) != 10 or not npi.isdigit() or npi[0] not in "12":
        return False
    return npi_check_digit(npi[:9]) == int(npi[9])
