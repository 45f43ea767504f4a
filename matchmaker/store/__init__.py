"""The room registry behind one interface: `Store` (`base.py`), `MemoryStore` (`memory/`, the
embedded default) and `RedisStore` (`redis.py` and `redis_codec.py`, its scripts in `matchmaker/lua/`)."""

from matchmaker.store.base import SWEEP_BATCH, Store, Subscription, restarted, seats
from matchmaker.store.memory import MemoryStore
from matchmaker.store.redis import RedisStore

__all__ = ["SWEEP_BATCH", "MemoryStore", "RedisStore", "Store", "Subscription", "restarted", "seats"]
