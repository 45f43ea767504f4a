"""The matchmaker's fixtures (both stores, a controllable clock, started apps), for the store tests."""

from tests.matchmaker.conftest import api_nodes, clock, make_app, make_mm, mm, store_kind, stores

__all__ = ["api_nodes", "clock", "make_app", "make_mm", "mm", "store_kind", "stores"]
