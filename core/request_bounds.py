"""Bounds of the API's request fields that clients check too.

The API's request models take them from here, and `gsf deploy` checks its options against the
same values before it uploads anything, so the CLI refuses exactly what the API would answer 422.
Kept free of imports: the CLI loads this module on every deploy.
"""

from __future__ import annotations

MIN_PLAYERS = 1  # seats of a server (`max_players`); 0 or less is refused, never read as "default"
MAX_PLAYERS = 1000
MIN_ROOMS = 1  # rooms one server hosts (`max_rooms`, the module's `maxRooms`)
MAX_ROOMS = 10_000
SERVER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"
SERVER_NAME_RULE = "1-64 characters of letters, digits, space, '_', '.', '-'"
