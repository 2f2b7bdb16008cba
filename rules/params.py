"""What a rule is: its id, level, severity, kind of notice, name, message template and typed
parameters with their defaults.

Each rule family module declares its :class:`RuleSpec` objects next to its logic; the
registry in :mod:`shian.rules.families` lists the families, and config loading validates the
``rules:`` section against the specs found there. Every page and message names a rule from its
spec (kind and summary), so the dashboard, the e-mail, the robot card, the ledger and the
report cannot call one notice two different things.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["town", "county"]
Severity = Literal["info", "warning", "critical"]

# Every number a config gives has a range (README, "Bounds of a config"): a value outside it is
# a typing error (a year typed as a number of days, hours for days), and a bounded value cannot
# overflow the date arithmetic it feeds. Integers are integers: 25.5, 25.0 and true are refused.
MAX_DAYS = 3660          # ten years
MAX_HOURS = 8784         # a leap year
MAX_COUNT = 1_000_000    # samples, guests, snapshot intervals
Days = Annotated[int, Field(ge=1, le=MAX_DAYS)]
Hours = Annotated[float, Field(gt=0, le=MAX_HOURS, allow_inf_nan=False)]
HoursOrZero = Annotated[float, Field(ge=0, le=MAX_HOURS, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
PositiveInt = Annotated[int, Field(ge=1, le=MAX_COUNT)]
NonNegInt = Count
Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
WorkingDays = Annotated[int, Field(ge=1, le=250)]  # a count of official working days (about a year at most)

# The kind of document a notice is, as an office files it: 预警 (a risk found), 催报 (a report
# is owed), 督办 (the county follows up a case or a missed duty until it is done), 工作提示
# (routine work ahead; nothing has gone wrong yet).
Kind = Literal["预警", "催报", "督办", "工作提示"]
DOCUMENTS: dict[str, str] = {"预警": "预警通知", "催报": "催报通知", "督办": "督办通知", "工作提示": "工作提示"}


class RuleParams(BaseModel):
    """Parameters every rule takes. Subclasses add their own, each with its default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    #: mapping parameters that an override replaces as a whole; the others merge per key
    WHOLE: ClassVar[frozenset[str]] = frozenset()
    enabled: bool = True


@dataclass(frozen=True)
class RuleSpec:
    """``summary`` is the rule's Chinese name on every page and message; ``template`` names the
    message template that words its facts (``notifiers/templates/<template>.txt``)."""

    id: str
    level: Level
    severity: Severity
    params: type[RuleParams] = RuleParams
    summary: str = ""
    kind: Kind = field(kw_only=True)
    template: str = field(kw_only=True)

    @property
    def document(self) -> str:
        """The document's title: 预警通知, 催报通知, 督办通知 or 工作提示."""
        return DOCUMENTS[self.kind]


def exact(x: float | int) -> Fraction:
    """The decimal a person wrote (0.98, 0.05), as an exact fraction: no binary float error."""
    return Fraction(Decimal(repr(x)))
