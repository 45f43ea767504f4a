"""A far-away host on this machine: a network namespace the test creates, joined to ours by a veth
pair, whose outgoing packets wait a fixed delay (`tc netem`, or nfqueue_delay.py where the kernel
has no netem). Sockets made in it (`DelayedHost.listen`) are served from this process: what they
answer reaches us after the delay, as from another region.

Everything is removed on exit, even after a failure: the namespace (with its end of the pair and its
firewall rules), our end of the pair, and the delay process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNET = 0x40000000
HERE = Path(__file__).resolve().parent
# RFC 2544's benchmarking range: addresses no real network here uses, for the test's own host only.
SUBNET = "198.18"


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=check)


@dataclass
class DelayedHost:
    name: str
    address: str  # the host's address, inside the namespace
    delay_ms: int
    mode: str = ""  # "netem" or "nfqueue": how the delay is made
    _delayer: subprocess.Popen[str] | None = field(default=None, repr=False)

    def listen(self, port: int = 0) -> socket.socket:
        """A listening TCP socket on the host's address, made inside the namespace (a socket keeps
        the namespace it was made in; a thread switches, makes it and ends)."""
        made: list[socket.socket | BaseException] = []

        def inside() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/var/run/netns/{self.name}", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                finally:
                    os.close(fd)
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.address, port))
                sock.listen(128)
                made.append(sock)
            except BaseException as exc:  # handed to the caller's thread
                made.append(exc)

        thread = threading.Thread(target=inside, name=f"netns-{self.name}")
        thread.start()
        thread.join(10)
        result = made[0]
        if isinstance(result, BaseException):
            raise result
        result.set_inheritable(True)
        return result


def _require_tools() -> None:
    missing = [tool for tool in ("ip", "iptables", "tc") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        tools = ", ".join(missing) or "ip"
        raise RuntimeError(f"the region tests make a network namespace: they need root and {tools} "
                           "(apt-get install iproute2 iptables)")


@contextlib.contextmanager
def delayed_host(delay_ms: int) -> Iterator[DelayedHost]:
    """A namespace `gsfr-<id>` at 198.18.x.2 (we are .1), its outgoing packets delayed `delay_ms`."""
    _require_tools()
    tag = uuid.uuid4().hex[:6]
    name, ours, theirs = f"gsfr-{tag}", f"gsfr{tag}h", f"gsfr{tag}n"
    base = random.randrange(0, 256) * 256 + random.randrange(0, 64) * 4  # a /30 of 198.18.0.0/16
    host = f"{SUBNET}.{base // 256}.{base % 256 + 2}"
    local = f"{SUBNET}.{base // 256}.{base % 256 + 1}"
    created = False
    box = DelayedHost(name, host, delay_ms)
    try:
        _ip("ip", "netns", "add", name)
        created = True
        _ip("ip", "link", "add", ours, "type", "veth", "peer", "name", theirs)
        _ip("ip", "link", "set", theirs, "netns", name)
        _ip("ip", "addr", "add", f"{local}/30", "dev", ours)
        _ip("ip", "link", "set", ours, "up")
        _ip("ip", "addr", "add", f"{host}/30", "dev", theirs, ns=name)
        _ip("ip", "link", "set", theirs, "up", ns=name)
        _ip("ip", "link", "set", "lo", "up", ns=name)
        netem = _ip("tc", "qdisc", "add", "dev", theirs, "root", "netem", "delay", f"{delay_ms}ms", ns=name,
                    check=False)
        if netem.returncode == 0:
            box.mode = "netem"
        else:
            # No netem in this kernel ("Specified qdisc kind is unknown"): the same delay on the same
            # packets (all that leave the namespace), held in a netfilter queue.
            queue = random.randrange(1000, 60000)
            _ip("iptables", "-A", "OUTPUT", "-o", theirs, "-j", "NFQUEUE", "--queue-num", str(queue), ns=name)
            delayer = [sys.executable, str(HERE / "nfqueue_delay.py"), str(queue), str(delay_ms)]
            box._delayer = subprocess.Popen(
                ["ip", "netns", "exec", name, *delayer],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
            assert box._delayer.stdout is not None
            first = box._delayer.stdout.readline().strip()
            if first != "ready":
                raise RuntimeError(f"neither netem ({netem.stderr.strip()}) nor the nfqueue delay works: {first}")
            box.mode = "nfqueue"
        yield box
    finally:
        if box._delayer is not None and box._delayer.poll() is None:
            box._delayer.kill()
            box._delayer.wait(10)
        if box._delayer is not None and box._delayer.stdout is not None:
            box._delayer.stdout.close()
        if created:
            _ip("ip", "netns", "del", name, check=False)  # its end of the pair and its rules go with it
        _ip("ip", "link", "del", ours, check=False)  # gone with its peer already, unless the move failed
