"""The container boundary, checked from inside a real game container started by `start_container`.

A probe game module (hostile/probe.js) runs each check as the game, in the runtime's own Node process,
and answers over the player WebSocket; the Docker side is checked with `inspect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from websockets.asyncio.client import ClientConnection

from activities.containers import bridge_interface, host_guard_rules
from tests.sandbox.conftest import HOSTILE, GameBox, Sandbox, stand_in_host

pytestmark = pytest.mark.docker

GAMES_DIR = HOSTILE.parent.parent.parent / "examples" / "games"


async def probe(ws: ClientConnection, op: str, **data: Any) -> Any:
    await ws.send(json.dumps({"type": "probe", "data": {"op": op, **data}}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if frame["type"] == "error":
            raise AssertionError(frame)
        if frame["type"] == "result" and frame["data"]["op"] == op:
            return frame["data"]["result"]


@pytest.fixture(scope="module")
def prober(sandbox: Sandbox) -> GameBox:
    return sandbox.start(HOSTILE / "probe.js")


@pytest.fixture(scope="module")
def neighbour(sandbox: Sandbox) -> GameBox:
    """A well-behaved game on the same node and network."""
    return sandbox.start(GAMES_DIR / "chat.js")


@contextlib.contextmanager
def tcp_listener(host: str) -> Iterator[int]:
    """A tiny TCP service on the host that answers and closes; yields its port."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.sendall(b"host\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        srv.close()


# --- process and filesystem ---------------------------------------------------------------------


async def test_identity_capabilities_seccomp_and_init(prober: GameBox) -> None:
    ws = await prober.join("inspector")
    try:
        me = await probe(ws, "self")
        zombies = await probe(ws, "zombies")
    finally:
        await ws.close()
    status = me["status"]
    # Non-root, uid/gid 1000 everywhere, no supplementary groups beyond its own.
    assert (me["uid"], me["euid"], me["gid"]) == (1000, 1000, 1000)
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1000"] * 4
    assert me["groups"] == [1000]
    # No capabilities at all, in any set; no_new_privs; a seccomp filter.
    for cap_set in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[cap_set], 16) == 0, (cap_set, status[cap_set])
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    # pid 1 is docker's init (tini), the runtime is its child; orphans are reaped, no zombies.
    assert me["pid1"][0] == "/sbin/docker-init"
    assert me["pid1"][-1] == "/app/runtime/server.js"
    assert me["pid"] != 1
    assert status["PPid"] == "1"
    assert zombies == {"zombies": []}
    # The runtime took the secrets out of process.env before the game loaded.
    assert "GSF_SEAT_SECRET" not in me["envKeys"]
    assert "GSF_AGENT_KEY" not in me["envKeys"]


async def test_filesystem_read_only_and_tmp_noexec(prober: GameBox) -> None:
    ws = await prober.join("writer")
    try:
        me = await probe(ws, "self")
        results = {f: await probe(ws, "write", file=f)
                   for f in ("/app/game/game.js", "/etc/passwd", "/newfile", "/app/x", "/tmp/ok")}
        exec_tmp = await probe(ws, "execTmp")
    finally:
        await ws.close()
    for file in ("/app/game/game.js", "/etc/passwd", "/newfile", "/app/x"):
        assert results[file]["code"] == "EROFS", (file, results[file])
    assert results["/tmp/ok"] == {"ok": True, "value": "written"}
    # An executable script on /tmp cannot be run: the mount is noexec.
    assert exec_tmp["mode"] == "755", exec_tmp
    assert exec_tmp["direct"]["code"] == "EACCES", exec_tmp

    mounts = {}
    for line in me["mountinfo"].splitlines():
        pre, _, post = line.partition(" - ")
        fields, super_fields = pre.split(), post.split()
        mounts[fields[4]] = (fields[5].split(","), super_fields[0], super_fields[1],
                             super_fields[2].split(",") if len(super_fields) > 2 else [])
    root_opts = mounts["/"][0]
    assert "ro" in root_opts
    tmp_opts, tmp_fs, _, tmp_super = mounts["/tmp"]
    assert tmp_fs == "tmpfs"
    assert {"rw", "noexec", "nosuid", "nodev"} <= set(tmp_opts)
    assert "size=16384k" in tmp_super
    # Docker's /dev/shm is the one other writable place: noexec, nosuid, nodev as well.
    assert {"rw", "noexec", "nosuid", "nodev"} <= set(mounts["/dev/shm"][0])
    # Nothing from the host but what Docker always adds (/etc/hosts, resolv.conf, hostname) and
    # its init binary, read-only.
    assert not any("docker.sock" in m for m in mounts), mounts.keys()
    assert "ro" in mounts["/sbin/docker-init"][0]
    host_binds = {m for m, (_, fstype, _src, _) in mounts.items()
                  if fstype not in ("overlay", "proc", "tmpfs", "devpts", "sysfs", "cgroup", "mqueue")}
    assert host_binds <= {"/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/sbin/docker-init"}, host_binds


def test_docker_side_hardening(prober: GameBox, docker_client: docker.DockerClient) -> None:
    attrs = docker_client.api.inspect_container(prober.container.id)
    host = attrs["HostConfig"]
    assert host["Privileged"] is False
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert not host.get("CapAdd")
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert not any(opt.startswith(("seccomp=unconfined", "apparmor=unconfined")) for opt in host["SecurityOpt"])
    assert host["Init"] is True
    # No host namespaces: private network, pid, ipc, uts, user-default, cgroup.
    assert host["NetworkMode"] == prober.sandbox.settings.game_network
    assert host["PidMode"] == ""
    assert host["IpcMode"] in ("private", "shareable", "")
    assert host["UTSMode"] == ""
    assert host["UsernsMode"] == ""
    assert host["CgroupnsMode"] == "private"
    # No mounts from the host at all, and limits in place.
    assert not host.get("Binds")
    assert not attrs["Mounts"]
    assert host["Memory"] == 128 * 2**20
    assert host["MemorySwap"] == 128 * 2**20
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,nodev,size=16m"}
    assert {u["Name"]: u["Hard"] for u in host["Ulimits"]} == {"nofile": 1024}
    assert host["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
    assert attrs["Config"]["User"] == "1000:1000"


# --- network ---------------------------------------------------------------------------------------


def test_game_network_has_no_icc_and_no_masquerade(prober: GameBox,
                                                   docker_client: docker.DockerClient) -> None:
    net = docker_client.networks.get(prober.sandbox.settings.game_network)
    options = net.attrs["Options"]
    assert options["com.docker.network.bridge.enable_icc"] == "false"
    assert options["com.docker.network.bridge.enable_ip_masquerade"] == "false"
    assert net.attrs["Internal"] is False  # published ports on 127.0.0.1 need a routed bridge


async def test_cannot_reach_another_game_container(prober: GameBox, neighbour: GameBox) -> None:
    ws = await prober.join("scanner")
    try:
        results = await probe(ws, "connect", targets=[[neighbour.ip, 8080], [prober.ip, 8080]],
                              timeoutMs=2000)
    finally:
        await ws.close()
    other, own = results
    # The neighbour serves on 8080 (the host reaches it through its published port) ...
    assert neighbour.status()["ready"] is True
    # ... but from the other game container the packets are dropped (icc=false): no answer at all.
    assert other["outcome"] == "timeout", other
    # Control: the probe's own address answers, so the probe itself works.
    assert own["outcome"] == "connected", own


async def test_cannot_reach_host_services_on_loopback(prober: GameBox) -> None:
    gateway = prober.sandbox.gateway()
    with tcp_listener("127.0.0.1") as loopback_port, tcp_listener("0.0.0.0") as any_port:
        ws = await prober.join("hostscan")
        try:
            results = await probe(ws, "connect", timeoutMs=2000, targets=[
                [gateway, loopback_port], ["127.0.0.1", loopback_port], [gateway, any_port]])
        finally:
            await ws.close()
        # Control: that service does answer the host itself, on the same address.
        with socket.create_connection((gateway, any_port), timeout=3):
            pass
    via_gateway, own_loopback, any_address = results
    # A host service bound to 127.0.0.1 is out of reach: through the bridge gateway and on the
    # container's own loopback (a different network namespace).
    assert via_gateway["outcome"] == "ECONNREFUSED", via_gateway
    assert own_loopback["outcome"] == "ECONNREFUSED", own_loopback
    # A host service bound to 0.0.0.0 too: the agent's INPUT rule refuses connections that game
    # containers open to the host (GSF_HOST_FIREWALL).
    assert any_address["outcome"] == "ECONNREFUSED", any_address


def test_the_firewall_rules_are_in_place_for_the_game_network(prober: GameBox) -> None:
    network = prober.sandbox.client.networks.get(prober.sandbox.settings.game_network)
    for rule in host_guard_rules(bridge_interface(network.attrs)):
        assert subprocess.run(["iptables", "-C", *rule], check=False, capture_output=True).returncode == 0, rule


def drop_counter(bridge: str) -> int:
    """Packets the game network's DOCKER-USER drop rule has matched."""
    out = subprocess.run(["iptables", "-L", "DOCKER-USER", "-v", "-x", "-n"], check=True, capture_output=True,
                         text=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines()
               if bridge in line and "may not open connections out" in line)


async def test_no_route_to_an_outside_host(prober: GameBox, sandbox: Sandbox,
                                           docker_client: docker.DockerClient) -> None:
    node = shutil.which("node")
    assert node, "node is needed on the host for the stand-in server"
    with stand_in_host(node) as outside:
        # Control 1: the stand-in answers its own link peer (the host).
        with socket.create_connection((outside.peer_ip, outside.port), timeout=3) as s:
            assert s.recv(16) == b"outside\n"
        # Control 2: a container on an ordinary bridge (masquerade on) reaches it: the stand-in
        # sees the host's address and can answer. Same image, same user, same Node probe.
        code = (f"const s=require('net').connect({outside.port},'{outside.peer_ip}');"
                "s.setTimeout(3000,()=>{console.log('timeout');process.exit()});"
                "s.on('connect',()=>{console.log('connected');process.exit()});"
                "s.on('error',e=>{console.log(e.code);process.exit()})")
        control_net = docker_client.networks.create(f"gsf-sbx-ctl-{uuid.uuid4().hex[:8]}", driver="bridge")
        try:
            ctl = docker_client.containers.run(
                sandbox.image(HOSTILE / "probe.js"), ["node", "-e", code], detach=True, user="1000:1000",
                network=control_net.name, labels={"gsf.node_id": sandbox.settings.node_id})
            try:
                assert ctl.wait(timeout=20)["StatusCode"] == 0
                assert ctl.logs().decode().strip() == "connected", ctl.logs()
            finally:
                ctl.remove(force=True)
        finally:
            control_net.remove()
        # The game network: the agent's DOCKER-USER rule drops the connection before it leaves the
        # node (the rule's counter moves); were it to leave, masquerade is off, so the outside host
        # would see a private source address it has no route back to. Nothing ever connects.
        bridge = bridge_interface(sandbox.client.networks.get(sandbox.settings.game_network).attrs)
        dropped_before = drop_counter(bridge)
        ws = await prober.join("escaper")
        try:
            (result,) = await probe(ws, "connect", targets=[[outside.peer_ip, outside.port]],
                                    timeoutMs=3000)
        finally:
            await ws.close()
        assert result["outcome"] in ("timeout", "EHOSTUNREACH", "ENETUNREACH"), result
        assert drop_counter(bridge) > dropped_before
