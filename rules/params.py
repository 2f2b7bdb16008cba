"""What a rule is: its id, level, severity and typed parameters with their defaults.

Each rule family module declares its :class:`RuleSpec` objects next to its logic; the
registry in :mod:`shian.rules.families` lists the families, and config loading validates the
``rules:`` section against the specs found there.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["town", "county"]
Severity = Literal["info", "warning", "critical"]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(ge=0, le=1)]


class RuleParams(BaseModel):
    """Parameters every rule takes. Subclasses add their own, each with its default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    enabled: bool = True


@dataclass(frozen=True)
class RuleSpec:
    id: str
    level: Level
    severity: Severity
    params: type[RuleParams] = RuleParams
    summary: str = ""


def exact(x: float | int) -> Fraction:
    """The decimal a person wrote (0.98, 0.05), as an exact fraction: no binary float error."""
    return Fraction(Decimal(repr(x)))
