#!/usr/bin/env bash
# Make sure a Docker engine answers; install and start one (Debian's docker.io) where none does.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "gsf: no Docker engine answers and this script cannot install one (needs root and apt-get)." >&2
    echo "gsf: install Docker (https://docs.docker.com/engine/install/) and start it, then run again." >&2
    exit 1
  fi
  echo "gsf: installing Docker engine (apt-get install docker.io)..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! command -v docker >/dev/null 2>&1; then
  echo "gsf: dockerd is installed but the docker client is missing (apt-get install docker.io)." >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "gsf: a Docker engine is installed but not running, and starting it needs root: sudo dockerd &" >&2
  exit 1
fi

# gVisor (`runsc`), the optional stronger OCI runtime (GSF_CONTAINER_RUNTIME=runsc): installed
# where the package exists, and registered with the engine this script starts. `--network=host`
# makes gVisor use the network namespace Docker made for the container (its own, as with runc)
# instead of gVisor's user-space stack, which refuses to start inside some VMs.
if ! command -v runsc >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null 2>&1 || \
    echo "gsf: gVisor (runsc) is not installable here; the default runtime (runc) is used." >&2
fi
# No userland proxy: with it, every connection to a port published on 127.0.0.1 (players through
# the node's own edge, the benches, gsf dev) goes through one docker-proxy process per container
# that holds 6 fds per connection (2 sockets + 2 splice pipes) and exits at its nofile limit,
# dropping every player of that server (~3,300 at dockerd's 20,000). Without it the kernel DNATs
# loopback traffic too (Docker sets route_localnet and a masquerade rule on the bridge).
config=()
if [ ! -e /etc/docker/daemon.json ]; then
  mkdir -p /etc/gsf
  runtimes=''
  if command -v runsc >/dev/null 2>&1; then
    runtimes=$(printf ', "runtimes": {"runsc": {"path": "%s", "runtimeArgs": ["--network=host"]}}' \
      "$(command -v runsc)")
  fi
  printf '{"userland-proxy": false%s}\n' "$runtimes" > /etc/gsf/dockerd.json
  config=(--config-file /etc/gsf/dockerd.json)
elif ! grep -q '"userland-proxy"' /etc/docker/daemon.json; then
  config=(--userland-proxy=false)
fi

log=/var/log/gsf-dockerd.log
echo "gsf: starting dockerd (log: $log)..."
setsid nohup dockerd "${config[@]}" >"$log" 2>&1 < /dev/null &
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.5
done
echo "gsf: dockerd did not answer within 60 s; see $log" >&2
tail -n 20 "$log" >&2 || true
exit 1
