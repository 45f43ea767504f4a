"""Whose rows a caller sees: a user their own, an admin everyone's. Every route that lists or looks up
an owned resource (servers, pipeline runs, fleets, games, model jobs) asks here, so the rule is
written once; another user's row answers as a missing one would (404), never 403."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute


class Owner(Protocol):
    """Whoever asks: a user (`core.db.models.User`), or the allocation path's remembered caller."""

    @property
    def id(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


QueryT = TypeVar("QueryT", bound=Select[*tuple[Any, ...]])


def visible_to(user: Owner, query: QueryT, owner_id: InstrumentedAttribute[str]) -> QueryT:
    """`query` narrowed to the rows `user` may see (`owner_id` is the rows' owner column)."""
    return query if user.is_admin else query.where(owner_id == user.id)


def may_see(user: Owner, owner_id: str) -> bool:
    """Whether `user` may see a row owned by `owner_id`."""
    return user.is_admin or owner_id == user.id
