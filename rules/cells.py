"""Text as a spreadsheet cell must hold it, for every workbook shian writes (the monthly
report, the ledger, a dropped file's 拒收 list): plain values, no I/O, no spreadsheet library.
"""
from __future__ import annotations

import re
from typing import Any

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")   # what a spreadsheet reads as a formula (OWASP)
ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")  # control characters a worksheet cannot hold


def safe(value: Any) -> Any:
    """A text cell as text: a control character a worksheet cannot hold (an entity name with
    a BEL in it would make openpyxl refuse the whole file) becomes a space, and text that a
    spreadsheet would read as a formula gets a leading ' (OWASP CSV injection advice), so it
    shows as text in every program that opens the file. Numbers stay numbers."""
    if not isinstance(value, str):
        return value
    value = ILLEGAL.sub(" ", value)
    return "'" + value if value.startswith(FORMULA_LEADS) else value
