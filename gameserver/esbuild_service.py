"""The long-lived esbuild process the project builds talk to (gameserver/tooling/esbuild-service.js).

Starting `node` and esbuild costs about as much as compiling a whole small project, twice per
build (the analysis's TypeScript, then the bundle), so one process serves a burst of builds: it is
started by the first request, answers JSON lines on stdin/stdout, keeps compiled files by content
hash, and is stopped after `idle_seconds` without a request (and at exit), so an idle host keeps
no process and nothing outlives its parent (the service exits when its stdin closes). A process
that lives long and builds now and then keeps it longer with `kept_warm`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

TOOLING = Path(__file__).resolve().parent / "tooling"
SERVICE_JS = TOOLING / "esbuild-service.js"
IDLE_SECONDS = 1.5  # a burst of builds shares the process; a short-lived caller leaves none behind
WARM_IDLE_SECONDS = 600.0  # `kept_warm`: a worker's next deploy within ten minutes finds it running
REQUEST_TIMEOUT_SECONDS = 120.0


class ServiceError(RuntimeError):
    """The service could not answer: it is not installed, did not start, died or timed out;
    `output` is the tail of what it printed on stderr."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class EsbuildService:
    """One `node esbuild-service.js`, started lazily; requests are serialized (each takes a few ms)."""

    def __init__(self, node: str = "node", idle_seconds: float = IDLE_SECONDS) -> None:
        self.node = node
        self.idle_seconds = idle_seconds
        self.starts = 0  # processes started by this object: the tests' and the bench's check
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = 0  # the pid that started _proc: a forked child starts its own
        self._stderr: IO[bytes] | None = None
        self._buffer = b""
        self._timer: threading.Timer | None = None
        self._holds = 0  # `held` blocks under way: no idle stop meanwhile

    @property
    def pid(self) -> int | None:
        """The running service's pid, or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None and self._owner == os.getpid() else None

    def request(self, payload: Mapping[str, Any], timeout: float = REQUEST_TIMEOUT_SECONDS) -> dict[str, Any]:
        """One request, its answer (a JSON object); raises ServiceError."""
        line = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            try:
                reply = self._exchange(line, timeout)
            finally:
                self._arm_timer()
        answer = json.loads(reply)
        if not isinstance(answer, dict):
            raise ServiceError("the esbuild service answered something other than a JSON object")
        if "fatal" in answer:
            raise ServiceError("the esbuild service failed", str(answer["fatal"])[-4000:])
        return answer

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Start the service now without waiting for it, and keep it from idling out until the block
        ends: node and esbuild boot while the caller does something slow before its first request
        (npm ci), which may take longer than `idle_seconds` (a service stopped meanwhile would be
        started again, cold, by that request). Raises ServiceError when it cannot start."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            try:
                self._running()
            except ServiceError:
                self._arm_timer()
                raise
            self._holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                if self._timer is not None:
                    self._timer.cancel()
                self._arm_timer()

    def close(self) -> None:
        """Stop the service (if running); the next request starts a new one."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._stop_locked()

    # --- inside the lock ------------------------------------------------------------------------

    def _exchange(self, line: bytes, timeout: float) -> bytes:
        """Send one request line, read one answer line. A service that died since its last answer
        (killed, out of memory) is replaced once; one that dies on this request is an error."""
        deadline = time.monotonic() + timeout
        while True:
            starts = self.starts
            proc = self._running()
            try:
                assert proc.stdin is not None
                try:
                    proc.stdin.write(line)
                    proc.stdin.flush()
                except OSError as exc:
                    raise self._failed(f"the esbuild service stopped taking requests: {exc}") from None
                return self._read_line(proc, deadline)
            except ServiceError:
                self._stop_locked()
                if self.starts != starts or time.monotonic() >= deadline:
                    raise

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._owner == os.getpid() and self._proc.poll() is None:
            return self._proc
        if self._owner != os.getpid():
            self._proc, self._stderr = None, None  # the parent's, after a fork: not ours to stop
        self._stop_locked()
        if not (TOOLING / "node_modules" / "esbuild").is_dir():
            raise ServiceError("the project build tooling is not installed: run scripts/bootstrap.sh "
                               "(it runs `npm ci` in gameserver/tooling)")
        # Kept open as long as the process runs (a file, not a pipe: nothing has to drain it).
        self._stderr = tempfile.TemporaryFile(prefix="gsf-esbuild-")  # noqa: SIM115
        try:
            self._proc = subprocess.Popen([self.node, str(SERVICE_JS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr, cwd=TOOLING)
        except OSError as exc:
            raise ServiceError(f"esbuild did not start: {exc}") from None
        self._owner = os.getpid()
        self._buffer = b""
        self.starts += 1
        return self._proc

    def _read_line(self, proc: subprocess.Popen[bytes], deadline: float) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        # A selector, not select.select(): that refuses descriptors past 1023, which a busy process
        # (the API, a test session) reaches.
        with selectors.DefaultSelector() as waiting:
            waiting.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._failed("the esbuild service did not answer in time")
                if not waiting.select(min(left, 1.0)):
                    continue
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise self._failed("the esbuild service exited")
                self._buffer += chunk
        reply, _, self._buffer = self._buffer.partition(b"\n")
        return reply

    def _failed(self, message: str) -> ServiceError:
        output = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            output = self._stderr.read()[-4000:].decode(errors="replace")
        return ServiceError(message, output)

    def _stop_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # the service exits when its stdin closes
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._buffer = b""

    def _arm_timer(self) -> None:
        if self._proc is None or self._holds:
            return
        self._timer = threading.Timer(self.idle_seconds, self._idle)
        self._timer.daemon = True
        self._timer.start()

    def _idle(self) -> None:
        if self._lock.acquire(blocking=False):  # busy: the request in flight re-arms the timer
            try:
                self._stop_locked()
            finally:
                self._lock.release()


SERVICE = EsbuildService()
atexit.register(SERVICE.close)


@contextlib.contextmanager
def kept_warm(idle_seconds: float = WARM_IDLE_SECONDS) -> Iterator[EsbuildService]:
    """For a long-running process that builds now and then (the control worker, an agent, `gsf
    dev`): the service stays up `idle_seconds` between requests, so the next deploy of a project
    finds it warm with its compiled files, and is stopped when the block ends."""
    previous = SERVICE.idle_seconds
    SERVICE.idle_seconds = idle_seconds
    try:
        yield SERVICE
    finally:
        SERVICE.idle_seconds = previous
        SERVICE.close()
