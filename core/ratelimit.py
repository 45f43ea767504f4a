"""The token buckets both services' rate limits are built of (api/ratelimit.py: per client IP and
per API key; matchmaker/ratelimit.py: per client IP and per player on /join).

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; a request takes one
token from each bucket it belongs to, or none if any is empty.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence


class TokenBuckets:
    """Token buckets of one shape (rate, burst) by key; at most `max_buckets`, least recently
    used dropped first (a dropped bucket comes back full, as a new client's would)."""

    def __init__(self, rate: float, burst: int, max_buckets: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)

    def level(self, key: str, now: float) -> float:
        """Tokens in `key`'s bucket at `now`."""
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - at) * self.rate)

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key`'s bucket holds a whole token; 0 if it does now."""
        missing = 1.0 - self.level(key, now)
        return missing / self.rate if missing > 0 else 0.0

    def take(self, key: str, now: float) -> None:
        tokens = self.level(key, now) - 1.0
        at = max(now, self._buckets.get(key, (0.0, now))[1])  # a clock going back refills nothing
        self._buckets[key] = (tokens, at)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


def take_all(pairs: Sequence[tuple[TokenBuckets, str]], now: float) -> float:
    """One token from every (buckets, key) if all have one: 0. Otherwise nothing is taken and
    the answer is the seconds until all of them will have one."""
    wait = max((buckets.wait(key, now) for buckets, key in pairs), default=0.0)
    if wait > 0:
        return wait
    for buckets, key in pairs:
        buckets.take(key, now)
    return 0.0


def retry_after(wait: float) -> int:
    """Retry-After is whole seconds; never 0, which a client would take as "retry now"."""
    return max(1, math.ceil(wait))
