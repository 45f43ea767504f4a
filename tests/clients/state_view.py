"""One player's view of a room's state, rebuilt from the runtime's frames as gsf_client.Room does it:
`$state` (the whole state), `$paths` (the compact encoding's path table), `$p` (compact c1
patches) and `$patch` (RFC 6902). Shared by the SDK's codec tests and the runtime's."""

from __future__ import annotations

import json
from typing import Any

from gsf_client import PathTable, apply_compact, apply_patch


class StateView:
    def __init__(self) -> None:
        self.state: Any = None
        self.table = PathTable()
        self.kinds: list[str] = []

    def receive(self, text: str) -> None:
        frame = json.loads(text)
        kind, data = frame["type"], frame.get("data")
        self.kinds.append(kind)
        if kind == "$state":
            self.state = data
            self.table.reset()
        elif kind == "$paths":
            self.table.reset(data)
        elif kind == "$p":
            self.state = apply_compact(self.state, data, self.table)
        elif kind == "$patch":
            self.state = apply_patch(self.state, data)
