"""Latency-aware region choice: time each region's ping endpoints (the node agents' `GET /ping`,
listed by the matchmaker's `GET /regions`) and order the regions nearest first."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

DEFAULT_SAMPLES = 4
PING_TIMEOUT = 2.0  # seconds; a region slower than this is as good as unreachable for a game


@dataclass
class RegionLatency:
    """One region as measured: `latency_ms` is the median round trip (None: no ping answered)."""

    region: str
    latency_ms: float | None
    samples_ms: list[float] = field(default_factory=list)
    ping_urls: list[str] = field(default_factory=list)
    servers: int = 0
    free_seats: int = 0
    capacity: bool = False

    @classmethod
    def listed(cls, entry: dict[str, Any]) -> RegionLatency:
        return cls(region=str(entry["region"]), latency_ms=None, ping_urls=list(entry.get("ping_urls") or []),
                   servers=int(entry.get("servers", 0)), free_seats=int(entry.get("free_seats", 0)),
                   capacity=bool(entry.get("capacity", False)))


async def _ping(http: httpx.AsyncClient, url: str, timeout: float) -> float | None:
    """One round trip in milliseconds, or None if the endpoint did not answer 2xx in time."""
    began = time.perf_counter()
    try:
        resp = await http.get(url, timeout=timeout, headers={"cache-control": "no-store"})
    except httpx.HTTPError:
        return None
    elapsed = (time.perf_counter() - began) * 1000
    return elapsed if 200 <= resp.status_code < 300 else None


async def time_region(http: httpx.AsyncClient, region: RegionLatency, samples: int = DEFAULT_SAMPLES,
                      timeout: float = PING_TIMEOUT) -> RegionLatency:
    """Fill `region.latency_ms`: a first ping opens the connection (not counted: a TCP handshake
    is not what a game's messages pay), then `samples` pings over it, the median kept. The next
    ping URL is tried when one does not answer."""
    for url in region.ping_urls:
        if await _ping(http, url, timeout) is None:
            continue
        times = [t for t in [await _ping(http, url, timeout) for _ in range(max(1, samples))] if t is not None]
        if times:
            region.samples_ms = [round(t, 2) for t in times]
            region.latency_ms = round(statistics.median(times), 2)
            return region
    return region


async def measure(http: httpx.AsyncClient, listed: list[dict[str, Any]], samples: int = DEFAULT_SAMPLES,
                  timeout: float = PING_TIMEOUT) -> list[RegionLatency]:
    """Every listed region timed (all at once), nearest first; unreachable ones last."""
    regions = [RegionLatency.listed(entry) for entry in listed]
    await asyncio.gather(*(time_region(http, r, samples, timeout) for r in regions))
    return nearest_first(regions)


def nearest_first(regions: list[RegionLatency]) -> list[RegionLatency]:
    return sorted(regions, key=lambda r: (r.latency_ms is None, r.latency_ms or 0.0, r.region))


def join_order(regions: list[RegionLatency]) -> list[str]:
    """The regions a joinOrCreate tries, in order: those with a server of the game, nearest first
    (the matchmaker's join tells whether a region can still take the player)."""
    return [r.region for r in nearest_first(regions) if r.servers > 0]
