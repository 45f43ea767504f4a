"""Issue #19: the floors of a server's limits, and plans below them refused when settings load."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.limits import FLOORS, MIN_CPUS, MIN_MEMORY_MB, MIN_PIDS, below_floors
from core.settings import Settings

OK = {"memory_mb": MIN_MEMORY_MB, "cpus": MIN_CPUS, "pids": MIN_PIDS}


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(env="test", data_dir=tmp_path, secret_key="s" * 32, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("plan", [
    {**OK, "cpus": 1e-12}, {**OK, "cpus": 0.001}, {**OK, "memory_mb": 16}, {**OK, "pids": 8},
    {**OK, "cpus": math.nan}, {"memory_mb": 256, "cpus": 1},  # no pids: every deploy with it was a 500
])
def test_a_plan_below_the_floors_stops_the_settings_from_loading(tmp_path: Path, plan: dict[str, float],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="floors"):
        settings(tmp_path, plans={"ok": OK, "bad": plan})
    monkeypatch.setenv("GSF_PLANS", json.dumps({"bad": plan}, allow_nan=True))
    with pytest.raises(ValidationError, match="floors"):
        settings(tmp_path)


def test_the_derived_plans_stay_above_the_floors(tmp_path: Path) -> None:
    assert settings(tmp_path, plans={"ok": OK}).plans == {"ok": OK}
    # `small` is half of `standard`, but never below the floors.
    low = settings(tmp_path, server_memory_mb=MIN_MEMORY_MB, server_cpus=MIN_CPUS, server_pids=MIN_PIDS)
    assert below_floors(low.plans["small"]) == []
    assert low.plans["small"]["memory_mb"] == MIN_MEMORY_MB
    with pytest.raises(ValidationError, match="floors"):
        settings(tmp_path, server_pids=MIN_PIDS - 1)


@given(name=st.sampled_from(sorted(FLOORS)),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**400), 10**400)))
def test_below_floors_refuses_exactly_what_is_not_a_finite_number_at_or_above_its_floor(name: str,
                                                                                        value: float) -> None:
    refused = below_floors({**OK, name: value})
    fine = not (isinstance(value, float) and not math.isfinite(value)) and value >= FLOORS[name]
    assert (refused == []) == fine
    assert all(name in why for why in refused)
