#!/usr/bin/env bash
# Benchmarks sleeping benches: the wake latency of a sleeping small bench through serve's proxy
# (request to first byte, the wake included) against waking the same kind of container by hand
# (`docker start`, then curl until it answers), and the proxy's overhead on a running bench
# (wrk: requests per second and p99 latency through `serve --proxy-listen` against straight to
# the published port, and straight to the container's address, where the proxy connects).
# Prints medians.
#
#   bench/sleep.sh            # RUNS=5 by default
#   RUNS=9 bench/sleep.sh
#
# Needs: Docker, git, /bin/busybox, curl, wrk.
set -euo pipefail
RUNS=${RUNS:-5}
source "$(dirname "$0")/lib.sh"
bench_start docker git curl wrk python3 /bin/busybox
W=$(mktemp -d /tmp/benchctl-sleep-bench-XXXXXX)
export BENCHCTL_CACHE_DIR=$W/cache BENCHCTL_PUBLIC_HOST=127.0.0.1 CI=1
HAND=benchctl-bench-hand
PROXY=127.0.0.1:$(free_port)
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  "$BENCHCTL" teardown BENZ-1 --keep-link >/dev/null 2>&1 || true
  docker rm -f "$HAND" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

# --- fixtures: the busybox web app as a branch, deployed once ----------------------------
busybox_app "$W/repo" feature/BENZ-1-app hello
"$BENCHCTL" deploy feature/BENZ-1-app --repo "$W/repo" --no-link \
  --url-template 'http://{issue}.bench.test' >/dev/null
image=$(docker inspect -f '{{.Config.Image}}' benchctl-benz-1)
docker run -d --name "$HAND" -p 127.0.0.1::8080 "$image" >/dev/null
"$BENCHCTL" serve --listen "127.0.0.1:$(free_port)" --state-dir "$W/state" \
  --gc-interval 0 --proxy-listen "$PROXY" --url-template 'http://{issue}.bench.test' --wake-hold 60 2>"$W/serve.log" &
serve_pid=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null -H 'Host: benz-1.bench.test' "http://$PROXY/" && break; sleep 0.1; done

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# --- wake latency ----------------------------------------------------------------------------
proxied=() hand=()
for _ in $(seq 1 "$RUNS"); do
  "$BENCHCTL" sleep BENZ-1 >/dev/null 2>&1
  proxied+=("$(curl -fsS -o /dev/null -w '%{time_starttransfer}' -H 'Host: benz-1.bench.test' "http://$PROXY/")")
  docker stop -t 10 "$HAND" >/dev/null
  t0=$(now)
  docker start "$HAND" >/dev/null
  port=$(docker port "$HAND" 8080 | sed 's/.*://' | head -1)
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; do sleep 0.01; done
  t1=$(now)
  hand+=("$(echo "$t1 - $t0" | bc)")
done
wp=$(printf '%s\n' "${proxied[@]}" | median)
wh=$(printf '%s\n' "${hand[@]}" | median)
printf '%-58s %8.3f s\n' "wake through the proxy, request to first byte (median of $RUNS)" "$wp"
printf '%-58s %8.3f s\n' "docker start + curl until it answers, by hand (median of $RUNS)" "$wh"

# --- proxy overhead --------------------------------------------------------------------------
direct=$(docker port benchctl-benz-1 8080 | sed 's/.*://' | head -1)
rates() { # wrk args...: prints "requests/s p99-in-ms errors" (non-2xx answers, socket errors)
  wrk -t2 -c16 -d10s --latency "$@" | awk '
    /Requests\/sec/ {r=$2}
    / 99%/ {p=$2; m=1; if (p ~ /us$/) m=0.001; else if (p ~ /ms$/) m=1; else if (p ~ /s$/) m=1000;
            gsub(/[a-z]+$/, "", p); p=p*m}
    /Non-2xx/ {e+=$NF}
    /Socket errors/ {gsub(",", ""); e+=$4+$6+$8+$10}
    END {print r, p, e+0}'
}
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' benchctl-benz-1)
declare -A R
# three rounds, the three ways in turn (busybox httpd's answers vary from one run to the next)
for _ in 1 2 3; do
  R[direct]+="$(rates "http://127.0.0.1:$direct/")
"
  R[proxy]+="$(rates -H 'Host: benz-1.bench.test' "http://$PROXY/")
"
  R[container]+="$(rates "http://$ip:8080/")
"
done
mid() { # way column: the median of that column over the rounds
  printf '%s' "${R[$1]}" | awk -v c="$2" 'NF {print $c}' | median
}
printf '%-30s %12s %11s %8s\n' "wrk -t2 -c16 -d10s, median of 3" "requests/s" "p99" "errors"
for way in direct proxy container; do
  label=$(case $way in direct) echo "straight to the published port" ;; proxy) echo "through serve's proxy" ;; *) echo "straight to the container" ;; esac)
  printf '%-30s %12s %8s ms %8s\n' "$label" "$(mid $way 1)" "$(mid $way 2)" "$(mid $way 3)"
done
