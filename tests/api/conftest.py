"""The API tests' platform: API, matchmaker and control worker, no agent (a module may bring its own `h`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from tests.harness import Harness, platform


@pytest.fixture
async def h(settings: Settings, temporal_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness
