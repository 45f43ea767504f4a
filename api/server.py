"""How `gsf api` runs the API under uvicorn.

uvicorn rewrites a request's client address from `X-Forwarded-For` when the peer is in its
`forwarded_allow_ips` (127.0.0.1 unless told otherwise), so on a default start any local caller
could pick the address the rate limits and the audit log see. The platform reads the header itself,
from `GSF_TRUSTED_PROXIES` only (core.asgi.ClientAddressMiddleware), so uvicorn's reading is off.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from core.settings import Settings

# Open event streams must not hold a stop for long: `gsf up` waits 10 s per child.
GRACE_SECONDS = 2


def uvicorn_config(app: FastAPI, settings: Settings, log_level: str = "warning") -> uvicorn.Config:
    """The API's uvicorn configuration; uvicorn writes through the logging the process set up."""
    return uvicorn.Config(app, host=settings.api_host, port=settings.api_port, log_level=log_level,
                          timeout_graceful_shutdown=GRACE_SECONDS, log_config=None, proxy_headers=False)
