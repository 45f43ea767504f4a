"""The one check of an error answer: an RFC 7807 problem of the expected status and `type` slug."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"


def assert_problem(resp: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    """`resp` is a problem+json answer with `status` (and, when given, the type `.../<slug>`),
    with a title, and no traceback; returns its body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM_JSON), resp.headers.get("content-type")
    assert "Traceback" not in resp.text
    body: dict[str, Any] = resp.json()
    assert body.get("status") == status, body
    assert body.get("title"), body
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body
