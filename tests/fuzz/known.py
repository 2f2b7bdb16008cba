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

KNOWN_FAILURES: list[Known] = [
    Known("config", r"^(gbk|gb18030-comment|utf-16|utf-16-le-no-bom|utf-32|invalid-utf8)$", "crash", r"UnicodeDecodeError",
          f"{CONFIG_OWNER}: load() reads the file as UTF-8 and catches only OSError, so a GBK, UTF-16 or "
          "broken-UTF-8 file raises UnicodeDecodeError instead of ConfigError naming the file and the encoding"),
    Known("config", r"^deep-", "crash", r"RecursionError",
          f"{CONFIG_OWNER}: YAML nested 1,000 deep (or more) raises RecursionError from PyYAML's composer/scanner "
          "and the recursive key_lines(); expected ConfigError"),
    Known("config", r"^billion-laughs$", "hang", r"no answer within",
          f"{CONFIG_OWNER}: key_lines() walks aliased YAML nodes again at every alias (9 levels of 9 aliases: "
          "387 million visits), so a 1 KB file never loads; expected ConfigError within a second"),
    Known("config", r"^lone-surrogate-township$", "crash", r"UnicodeEncodeError",
          f"{CONFIG_OWNER}: a township name \"\\udc00\" loads, then every notice key fails to encode "
          "(rules/notice.py); a lone surrogate in any name should refuse the config"),
    Known("config", r"^(days-1e9|disposal-days-1e9|window-days-1e18|max-jump-1e12|dedup-1e12)$", "crash", r"OverflowError",
          f"{CONFIG_OWNER} / rules/params.py: day counts (days, disposal_days, window_days, max_jump_days, dedup_days) "
          "have no upper bound; 1,000,000,000 days loads and then the engine's date arithmetic overflows"),
    Known("http", r"^(filename-with-CRLF|filename-with-NUL|filename-5000-characters|field-name-with-CRLF|"
                  r"field-name-with-NUL|multipart-without-boundary|multipart-cut-short)$", "crash", r"HTTP 500",
          f"{HTTP_OWNER}: post_events lets request.post() raise aiohttp's InvalidHeader / LineTooLong (a name with "
          "CR/LF or NUL, a header line over 8,190 bytes) and ValueError (no boundary, body cut short); the "
          "middleware answers 500 where 400 is meant"),
    Known("drop", r"^file-name-246-bytes$", "crash", r"File name too long",
          f"{DROP_OWNER}: scan_drop_folder moves a file to 已处理/ as '<timestamp>-<name>', which is past the "
          "file system's 255 bytes for a long name; the OSError escapes the scan, the file stays and is read "
          "again on every scan (its rejects pile up)"),
    Known("drop", r"^file-name-not-utf8$", "crash", r"UnicodeEncodeError",
          f"{DROP_OWNER}: a file name that is not UTF-8 gives a source with surrogate escapes, which the journal "
          "and the rejects table cannot store; UnicodeEncodeError escapes the scan and the file is read again on "
          "every scan"),
]


def known_reason(f: Failure) -> str | None:
    return next((k.reason for k in KNOWN_FAILURES if k.matches(f)), None)
