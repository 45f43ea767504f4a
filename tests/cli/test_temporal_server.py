"""The Temporal dev server counts as started only on a port it owns itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import temporal_server
from core import listen


def test_a_port_taken_meanwhile_is_not_mistaken_for_temporal(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The first port handed out is taken (someone listens there) by the time the server binds it:
    the start must not count that listener as Temporal, and must come up on another port."""
    squatter = listen.bind()
    taken = listen.port_of(squatter)
    real = temporal_server.free_port

    def ports() -> Iterator[int]:
        yield taken
        while True:
            yield real()

    chosen = ports()
    monkeypatch.setattr(temporal_server, "free_port", lambda host="127.0.0.1": next(chosen))
    server = temporal_server.start_dev_server(tmp_path / "temporal.log", ui_port=None)
    try:
        assert server.port != taken
        assert temporal_server.listens_on(server.proc.pid, server.port)
        assert "address already in use" in (tmp_path / "temporal.log").read_text()
    finally:
        server.stop()
        squatter.close()


def test_a_fixed_port_that_is_taken_fails_with_the_log(tmp_path: Path) -> None:
    squatter = listen.bind()
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            temporal_server.start_dev_server(tmp_path / "temporal.log", port=listen.port_of(squatter),
                                             ui_port=None, timeout=30)
    finally:
        squatter.close()
