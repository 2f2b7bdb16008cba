"""Recipients of a notice (§3, §6): the responsible department and the offices above it."""
from __future__ import annotations

from shian.rules.config import Config


def recipients(config: Config, level: str, township: str, route_key: str | None) -> tuple[str, ...]:
    """Town level: routed department (else the town office) plus the town office.
    County level: the county office, the routed department, the town office. No repeats."""
    office = config.townships[township].office
    dept = config.townships[township].routing.get(route_key) if route_key is not None else None
    chain = (dept, office) if level == "town" else (config.county.office, dept, office)
    return tuple(dict.fromkeys(d for d in chain if d is not None))
