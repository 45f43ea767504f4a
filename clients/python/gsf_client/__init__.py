"""gsf_client: the player side of Game Server Factory in Python (protocol v1), for bots, load
tests and server-side tools: the room list, joinOrCreate/create/join_by_id, messages, synced
state with path listeners, automatic reconnection, and the nearest region by measured latency."""

from __future__ import annotations

from gsf_client.client import Client
from gsf_client.compact import PathTable, apply_compact
from gsf_client.errors import (
    ConnectError,
    GSFError,
    JoinRefusedError,
    MatchmakerError,
    NoRoomAvailableError,
    ProtocolVersionError,
    RateLimitCloseError,
    RateLimitedError,
    ReconnectError,
    ReconnectExpiredError,
    ReconnectTokenError,
    ReplacedError,
    RoomClosedError,
    RoomFailedError,
    RoomFullError,
    RoomLockedError,
    RoomNotFoundError,
    RoomResetError,
    SeatRefusedError,
    ServerError,
    ServerStoppingError,
    ValidationError,
)
from gsf_client.patch import PatchError, apply_patch
from gsf_client.regions import RegionLatency
from gsf_client.room import PROTOCOL_VERSION, STATE_ENCODINGS, Reconnection, ReconnectPolicy, Room

__version__ = "0.1.0"
__all__ = [
    "PROTOCOL_VERSION", "STATE_ENCODINGS", "Client", "ConnectError", "GSFError", "JoinRefusedError",
    "MatchmakerError", "NoRoomAvailableError", "PatchError", "PathTable", "ProtocolVersionError",
    "RateLimitCloseError", "RateLimitedError", "RegionLatency",
    "ReconnectError", "ReconnectExpiredError", "ReconnectPolicy", "ReconnectTokenError", "Reconnection",
    "ReplacedError", "Room", "RoomClosedError", "RoomFailedError", "RoomFullError", "RoomLockedError",
    "RoomNotFoundError", "RoomResetError", "SeatRefusedError", "ServerError", "ServerStoppingError",
    "ValidationError", "apply_compact", "apply_patch",
]
