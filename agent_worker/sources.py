"""A game's source by its sha256, for the image build: from the local artifact store, else from
the API (`GET /api/v1/agent/sources/<sha>`), then kept locally."""

from __future__ import annotations

import hashlib
import time

import httpx
from temporalio import activity

from core.artifacts import LocalArtifactStore
from core.settings import Settings

SOURCE_FETCH_PATIENCE_SECONDS = 60.0


class SourceFetcher:
    def __init__(self, settings: Settings, artifacts: LocalArtifactStore, headers: dict[str, str]) -> None:
        self.settings = settings
        self.artifacts = artifacts
        self.headers = headers  # the node credential's dict, renewed in place

    def fetch(self, sha: str) -> bytes:
        try:
            return self.artifacts.get("sources", sha)
        except KeyError:
            pass
        # Another host: ask the API for the bytes, then keep them locally. An API that is restarting
        # (refused connections, 5xx) is waited for up to a minute, heartbeating, rather than failing
        # the build on the step's short retry schedule.
        deadline = time.monotonic() + SOURCE_FETCH_PATIENCE_SECONDS
        while True:
            try:
                resp = httpx.get(f"{self.settings.public_api_url}/api/v1/agent/sources/{sha}",
                                 headers=self.headers, timeout=30)
                if resp.status_code < 500:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            else:
                if time.monotonic() > deadline:
                    break
            if activity.in_activity():
                activity.heartbeat()
            time.sleep(0.5)
        resp.raise_for_status()
        if hashlib.sha256(resp.content).hexdigest() != sha:
            raise ValueError(f"source {sha} arrived corrupted")
        self.artifacts.put("sources", resp.content)
        return resp.content
