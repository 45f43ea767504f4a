"""Hold every packet of one netfilter queue for a fixed delay, then let it go: `tc netem delay` for
kernels built without netem (CONFIG_NET_SCH_NETEM unset, as on this project's machines).

Run inside the network namespace whose packets it delays (netlink queues are per namespace), after
an `iptables -A OUTPUT -o <dev> -j NFQUEUE --queue-num <n>` rule there:
`ip netns exec <ns> python nfqueue_delay.py <queue> <delay_ms>`. It prints `ready` once bound and
runs until killed. The kernel keeps each packet meanwhile (only its id comes here); a verdict
after the delay releases it, so the delay is the kernel's path, not a proxy's.
"""

from __future__ import annotations

import heapq
import select
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def message(kind: int, queue: int, attrs: list[bytes], flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


def configure(sock: socket.socket, queue: int, seq: int, payload: bytes) -> None:
    sock.send(message(NFQNL_MSG_CONFIG, queue, [payload], NLM_F_REQUEST | NLM_F_ACK, seq))
    reply = sock.recv(65536)
    _, kind, _, _, _ = struct.unpack_from("=IHHII", reply)
    errno = struct.unpack_from("=i", reply, 16)[0] if kind == NLMSG_ERROR else 0
    if errno:
        raise OSError(-errno, f"nfqueue config refused ({-errno})")


def packet_ids(data: bytes) -> list[int]:
    ids: list[int] = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            at = offset + 20  # nlmsghdr + nfgenmsg
            while at + 4 <= offset + length:
                size, akind = struct.unpack_from("=HH", data, at)
                if size < 4:
                    break
                if akind & 0x7FFF == NFQA_PACKET_HDR:
                    ids.append(struct.unpack_from(">I", data, at + 4)[0])
                at += (size + 3) & ~3
        offset += (length + 3) & ~3
    return ids


def run(queue: int, delay: float) -> None:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    configure(sock, queue, 1, attr(NFQA_CFG_CMD, struct.pack("=BxH", NFQNL_CFG_CMD_BIND, socket.htons(socket.AF_INET))))
    configure(sock, queue, 2, attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META)))
    print("ready", flush=True)
    held: list[tuple[float, int]] = []
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        readable, _, _ = select.select([sock], [], [], timeout)
        if readable:
            due = time.monotonic() + delay
            for pid in packet_ids(sock.recv(1 << 20)):
                heapq.heappush(held, (due, pid))
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, pid = heapq.heappop(held)
            sock.send(message(NFQNL_MSG_VERDICT, queue, [attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, pid))]))


if __name__ == "__main__":
    run(int(sys.argv[1]), float(sys.argv[2]) / 1000)
