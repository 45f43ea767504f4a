"""What the docs say `GET /api/v1/servers/{id}/logs?follow=true` streams (issue #20, item 10):
Server-Sent Events, and NDJSON only with `Accept: application/x-ndjson`. The behaviour itself is
tested on the running API in tests/workflows/test_gameserver.py; this holds every page to it."""

from __future__ import annotations

import re

from api.routes.servers import router
from tests.docs.includes import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FOLLOW = re.compile(r"logs\?[^`|]*follow=true")


def test_the_route_offers_both_formats() -> None:
    route = next(r for r in router.routes if getattr(r, "path", "") == "/api/v1/servers/{server_id}/logs")
    content = route.responses[200]["content"]  # type: ignore[attr-defined]
    assert set(content) == {"text/event-stream", "application/x-ndjson"}


def test_every_page_that_names_the_follow_stream_says_what_it_streams() -> None:
    named = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if not FOLLOW.search(line):
                continue
            where = f"{page.relative_to(REPO)}:{number}"
            named.append(where)
            assert "Server-Sent Events" in line, f"{where}: follow streams Server-Sent Events by default"
            if "NDJSON" in line:
                assert "application/x-ndjson" in line, f"{where}: NDJSON only with Accept: application/x-ndjson"
    assert len(named) >= 3, named  # README (twice) and console.md


def test_no_page_says_follow_streams_ndjson_unqualified() -> None:
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(r"follow[^.\n|]{0,40}streams NDJSON", text):
            raise AssertionError(f"{page.relative_to(REPO)}: {match.group(0)!r}")
