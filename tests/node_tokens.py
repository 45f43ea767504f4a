"""Node tokens for tests: a live credential written straight into the platform's database, as
`POST /api/v1/nodes` or an agent's enrollment would issue it."""

from __future__ import annotations

from core import node_credentials
from core.db.session import SessionFactory


async def issue_node_token(sessions: SessionFactory, node_id: str) -> str:
    async with sessions() as session:
        token = await node_credentials.issue(session, node_id)
        await session.commit()
    return token
