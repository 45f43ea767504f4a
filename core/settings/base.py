"""What every settings group shares: the `GSF_` environment and the comma-separated list parser."""

from __future__ import annotations

import json

from pydantic_settings import BaseSettings, SettingsConfigDict


class GroupSettings(BaseSettings):
    """One concern's settings. `core.settings.Settings` inherits every group, so a field keeps its
    flat name (`settings.temporal_address`, `GSF_TEMPORAL_ADDRESS`); processes read the whole
    `Settings` through `get_settings()`, not a group on its own.

    A group's docstring opens its section of docs/settings.md: the first line is the heading,
    the rest the introduction (`core/settings_doc.py`).
    """

    # defer_build: a group's own schema is built only if the group is ever used on its own; building
    # all of them at import would cost every process about 0.1 s for nothing.
    model_config = SettingsConfigDict(env_prefix="GSF_", env_file=None, extra="ignore", defer_build=True)


def comma_separated(value: object) -> object:
    """A list setting written `10.0.0.1, 10.1.0.0/16` as well as a JSON list (`GSF_TRUSTED_PROXIES`,
    `GSF_ALLOWED_PACKAGES`); used with `NoDecode`, so pydantic-settings hands over the raw text."""
    if isinstance(value, str):
        text = value.strip()
        return json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    return value
