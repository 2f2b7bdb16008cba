"""The registry of rule families: adding a family (and its rules) touches this list only."""
from __future__ import annotations

from ..params import RuleSpec
from .acks import Acks
from .banquets import Banquets
from .base import Family
from .campaigns import Campaigns
from .incidents import Incidents
from .inspections import Inspections
from .labs import Labs
from .offenders import Offenders
from .pass_rate import PassRate
from .rapid import Rapid
from .register import Register
from .reports import Reports
from .samples import Samples
from .silence import Silence

FAMILIES: tuple[type[Family], ...] = (
    Samples, Offenders, PassRate, Inspections, Reports, Campaigns, Incidents, Silence, Banquets, Rapid, Register,
    Acks, Labs,
)
RULES: dict[str, RuleSpec] = {spec.id: spec for fam in FAMILIES for spec in fam.RULES}
