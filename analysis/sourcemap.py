"""Source maps (v3), read just enough to put a finding in compiled JavaScript back on its
TypeScript line and column: the analyzer parses JavaScript only, the developer wrote TypeScript."""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _vlq(segment: str) -> list[int]:
    values: list[int] = []
    shift = value = 0
    for char in segment:
        digit = _B64[char]
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        shift = value = 0
    return values


@dataclass(frozen=True, slots=True)
class Position:
    """An original position: source path as the map names it, 1-based line and column."""

    source: str
    line: int
    column: int


class SourceMap:
    """Generated (line, column) → original position, from a map's `mappings`."""

    def __init__(self, text: str) -> None:
        data = json.loads(text)
        self.sources: list[str] = [str(s) for s in data.get("sources", [])]
        # Per generated line: sorted (generated column, source index, source line, source column), 0-based.
        self.lines: list[list[tuple[int, int, int, int]]] = []
        source = src_line = src_col = 0
        for line in str(data.get("mappings", "")).split(";"):
            column = 0
            row: list[tuple[int, int, int, int]] = []
            for segment in line.split(","):
                if not segment:
                    continue
                fields = _vlq(segment)
                column += fields[0]
                if len(fields) >= 4:
                    source += fields[1]
                    src_line += fields[2]
                    src_col += fields[3]
                    row.append((column, source, src_line, src_col))
            row.sort()
            self.lines.append(row)

    def original(self, line: int, column: int) -> Position | None:
        """The original position of a 1-based generated line and column (the nearest mapped
        segment at or before it on that line, else the line's first), None when unmapped."""
        if not 1 <= line <= len(self.lines):
            return None
        row = self.lines[line - 1]
        if not row:
            return None
        at = bisect_right(row, (column - 1, 1 << 30, 1 << 30, 1 << 30)) - 1
        _, source, src_line, src_col = row[max(at, 0)]
        if not 0 <= source < len(self.sources):
            return None
        return Position(self.sources[source], src_line + 1, src_col + 1)
