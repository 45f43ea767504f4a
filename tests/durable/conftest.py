"""The durable-room tests' platform: API, matchmaker, control worker and one agent, with Docker. A
module may bring its own `h`: test_node_loss.py starts its agents itself, test_snapshot_store.py
runs on each snapshot store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from tests.harness import Harness, platform


@pytest.fixture
async def h(settings: Settings, temporal_env: WorkflowEnvironment, runtime_images: str,
            cleanup_docker: None) -> AsyncIterator[Harness]:
    async with platform(settings, temporal_env.client) as harness:
        yield harness
