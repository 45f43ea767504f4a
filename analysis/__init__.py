"""Static analysis of uploaded game modules: syntax, dangerous constructs, the game contract.

Used by the deployment workflow (the `analyze_code` activity), by POST /api/v1/analysis and by
`gsf check`. Rules and their severities are in `RULES`; docs/analysis.md explains them.
"""

from __future__ import annotations

from analysis.analyzer import (
    AnalysisLimits,
    ImportSite,
    ModuleAnalysis,
    analyze,
    analyze_module,
    display_line,
    finding_order,
    module_kind,
)
from analysis.contract import DEFAULT_MAX_PLAYERS
from analysis.rules import FIXED_RULES, RULES, Rule, invalid_allow_rules

__all__ = [
    "DEFAULT_MAX_PLAYERS",
    "FIXED_RULES",
    "RULES",
    "AnalysisLimits",
    "ImportSite",
    "ModuleAnalysis",
    "Rule",
    "analyze",
    "analyze_module",
    "display_line",
    "finding_order",
    "invalid_allow_rules",
    "module_kind",
]
