"""The matchmaker service: room registry with heartbeat TTL, the live room list, seat reservations.

Entry points: `matchmaker.app.create_app` (the FastAPI app), `matchmaker.server.run` (`gsf matchmaker`).
"""
