"""Prometheus text exposition of the matchmaker's counters and the registry's totals."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from matchmaker.models import StoreStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LAG_BUCKETS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 30.0)


@dataclass
class Metrics:
    """Per-process counters; gauges come from the store when scraped."""

    heartbeats: Counter[str] = field(default_factory=Counter)
    joins: Counter[str] = field(default_factory=Counter)
    registrations: int = 0
    deregistrations: int = 0
    lag_buckets: list[int] = field(default_factory=lambda: [0] * len(LAG_BUCKETS))
    lag_sum: float = 0.0
    lag_count: int = 0

    def observe_lag(self, seconds: float) -> None:
        """Time between two heartbeats of one room (interval + relay delay)."""
        for i, bound in enumerate(LAG_BUCKETS):
            if seconds <= bound:
                self.lag_buckets[i] += 1
        self.lag_sum += seconds
        self.lag_count += 1

    def render(self, stats: StoreStats, expired_total: int, sse_clients: int, store: str) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{labels} {_fmt(value)}")

        metric("gsf_matchmaker_info", "gauge", "Which store this matchmaker uses.",
               [(f'{{store="{store}"}}', 1)])
        metric("gsf_matchmaker_rooms", "gauge",
               "Rooms in the registry: registered (not expired) and listed (ready).",
               [('{state="registered"}', stats.rooms_registered),
                ('{state="listed"}', stats.rooms_listed)])
        metric("gsf_matchmaker_players", "gauge", "Players in listed rooms, as last reported.",
               [("", stats.players)])
        metric("gsf_matchmaker_seats", "gauge", "Seats of listed rooms by state.",
               [('{state="taken"}', stats.players), ('{state="reserved"}', stats.reserved),
                ('{state="free"}', stats.free_seats)])
        metric("gsf_matchmaker_joins_total", "counter", "Join requests by result.",
               [(f'{{result="{k}"}}', v) for k, v in sorted(self.joins.items())])
        metric("gsf_matchmaker_heartbeats_total", "counter", "Heartbeats by result.",
               [(f'{{result="{k}"}}', v) for k, v in sorted(self.heartbeats.items())])
        metric("gsf_matchmaker_registrations_total", "counter", "Server registrations.",
               [("", self.registrations)])
        metric("gsf_matchmaker_deregistrations_total", "counter", "Server deregistrations.",
               [("", self.deregistrations)])
        metric("gsf_matchmaker_expiries_total", "counter",
               "Rooms this process removed because their heartbeat lapsed.",
               [("", expired_total)])
        metric("gsf_matchmaker_sse_clients", "gauge", "Open room-list event streams.",
               [("", sse_clients)])
        name = "gsf_matchmaker_heartbeat_lag_seconds"
        out.append(f"# HELP {name} Seconds between consecutive heartbeats of a room.")
        out.append(f"# TYPE {name} histogram")
        for bound, count in zip(LAG_BUCKETS, self.lag_buckets, strict=True):
            out.append(f'{name}_bucket{{le="{_fmt(bound)}"}} {count}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.lag_count}')
        out.append(f"{name}_sum {_fmt(self.lag_sum)}")
        out.append(f"{name}_count {self.lag_count}")
        return "\n".join(out) + "\n"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
