"""The agent's node token: kept in a file of its data folder (0600), obtained by enrolling.

- At start the agent reads `<data_dir>/node-<node_id>.token`. An admin-issued token (from
  `POST /api/v1/nodes` or `POST /api/v1/nodes/{id}/token`) goes into that file.
- Without one it enrolls (`POST /api/v1/agent/enroll`) with its join proof, an HMAC of its node
  id under the platform secret it holds anyway. The API admits only a node never admitted
  before, so a token stays the only way in once one exists; a deleted node is refused.
- When the API answers 401 (the token was rotated or revoked) the agent reads the file again,
  then tries enrolling again; until either works it keeps retrying, and re-creates nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import httpx

from core import security
from core.settings import Settings

log = logging.getLogger("gsf.agent")
RETRY_SECONDS = 0.5


def token_path(settings: Settings, node_id: str) -> Path:
    return settings.data_dir / f"node-{node_id}.token"


def read_token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, IsADirectoryError):
        return ""


def write_token(path: Path, token: str) -> None:
    """Write the token readable by its owner only, atomically (a crash leaves the old file or the new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    os.chmod(tmp, 0o600)  # an existing tmp file keeps its mode through O_CREAT
    os.replace(tmp, path)


class NodeCredential:
    """The agent's current token and the `Authorization` header every client shares (one dict,
    updated in place, so the matchmaking activities and the loops see a renewed token at once)."""

    def __init__(self, settings: Settings, node_id: str) -> None:
        self.settings = settings
        self.node_id = node_id
        self.path = token_path(settings, node_id)
        self.headers: dict[str, str] = {}
        self._complained = ""
        self._use(read_token(self.path))

    @property
    def token(self) -> str:
        return self.headers.get("Authorization", "").removeprefix("Bearer ")

    def _use(self, token: str) -> None:
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        else:
            self.headers.pop("Authorization", None)

    async def obtain(self, api: httpx.AsyncClient) -> None:
        """Until the agent has a token: the file's, else one from enrolling. The API may still be
        starting (`gsf up` starts it beside the agent), so this waits for it."""
        while not self.token:
            if not await self.renew(api):
                await asyncio.sleep(RETRY_SECONDS)

    async def renew(self, api: httpx.AsyncClient) -> bool:
        """After a 401: a token an operator put in the file since, else a new enrollment.
        Whether the agent now holds a token it did not hold before."""
        current = self.token
        stored = read_token(self.path)
        if stored and stored != current:
            self._use(stored)
            log.info("node %s: using the token in %s", self.node_id, self.path)
            return True
        try:
            resp = await api.post("/api/v1/agent/enroll", json={
                "node_id": self.node_id, "public_host": self.settings.public_host}, headers={
                "Authorization": f"Bearer {security.join_proof(self.settings.secret_key, self.node_id)}"})
        except httpx.TransportError as exc:
            self._complain("api", f"enrolling node {self.node_id}: the API does not answer ({exc})")
            return False
        if resp.status_code == 201:
            token = str(resp.json()["token"])
            write_token(self.path, token)
            self._use(token)
            self._complained = ""
            log.info("node %s enrolled; its token is in %s", self.node_id, self.path)
            return True
        self._complain(str(resp.status_code), f"node {self.node_id} cannot enroll ({resp.status_code}): "
                       f"{resp.text[:300]}; put a token an admin issued in {self.path}")
        return False

    def _complain(self, what: str, message: str) -> None:
        """Log a refusal once, not every retry."""
        if what != self._complained:
            self._complained = what
            (log.warning if what == "api" else log.error)(message)
