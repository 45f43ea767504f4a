"""The matchmaker's fixtures (both stores, a controllable clock, started apps), for the store tests."""

from tests.matchmaker.conftest import clock, make_app, make_mm, mm, store_kind, stores

__all__ = ["clock", "make_app", "make_mm", "mm", "store_kind", "stores"]
