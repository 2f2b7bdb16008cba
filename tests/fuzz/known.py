"""Failures found in code this fuzz does not own, expected until their fixes are merged.

Each entry names the path, the input (its label, as in the failure report: a hostile
construction, or a category of row), the kind of failure, and why; the fast test
(``tests/test_fuzz_fast.py``) marks a path whose failures all match as an expected failure,
and ``make fuzz`` still counts them in its table. Empty this list as the fixes land.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .oracle import Failure


@dataclass(frozen=True)
class Known:
    path: str
    label: str      # regular expression on the failure's label (the input's construction)
    kind: str       # crash, hang, wrong_accept, wrong_reject, lost, wrong_reason
    detail: str     # regular expression on the failure's detail
    reason: str     # who owns the fix, and what it is

    def matches(self, f: Failure) -> bool:
        return (f.path == self.path and f.kind == self.kind and re.search(self.label, f.label) is not None
                and re.search(self.detail, f.detail) is not None)


CONFIG_OWNER = "rules/config.py (config loader)"
HTTP_OWNER = "office/api.py (HTTP)"
DROP_OWNER = "streams/service.py (drop folder)"

KNOWN_FAILURES: list[Known] = []


def known_reason(f: Failure) -> str | None:
    return next((k.reason for k in KNOWN_FAILURES if k.matches(f)), None)
