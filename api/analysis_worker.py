"""One analysis worker process of the API (`api.analysis_pool`): analyzes what it reads on stdin.

Each request and answer is a 4-byte big-endian length and that many bytes. A request is a JSON
header line (filename, allowed rules, limits) followed by the source; the answer is the report
as JSON. The process ends when its stdin closes.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from typing import BinaryIO

LENGTH = struct.Struct(">I")
NICE = 10


def read_frame(stream: BinaryIO) -> bytes | None:
    """One length-prefixed frame, or None at the end of the stream."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    (size,) = LENGTH.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


def write_frame(stream: BinaryIO, body: bytes) -> None:
    stream.write(LENGTH.pack(len(body)) + body)
    stream.flush()


def main() -> None:
    # Analysis is batch work beside the API's requests: on a busy machine the API goes first,
    # from the start (the analyzer's imports are a second of CPU).
    os.nice(NICE)
    from analysis import AnalysisLimits, analyze

    # Answers go to the stdout this process was given; anything else that prints goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    while (frame := read_frame(requests)) is not None:
        header, _, source = frame.partition(b"\n")
        ask = json.loads(header)
        limits = AnalysisLimits(max_bytes=ask["max_bytes"], max_depth=ask["max_depth"],
                                time_budget_seconds=ask["time_budget_seconds"])
        report = analyze(source, limits=limits, allow_rules=ask["allow_rules"], filename=ask["filename"])
        write_frame(answers, report.model_dump_json().encode())


if __name__ == "__main__":
    main()
