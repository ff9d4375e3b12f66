#!/usr/bin/env bash
# Benchmarks a corpus sample with a real database: docker/awesome-compose's wordpress-mysql
# (WordPress and MariaDB, from the images tests/images.sh builds from Debian's packages), its
# compose file as written, deployed by benchctl against the pipeline a team writes by hand
# (`git clone`/`git pull`, `docker-compose up -d --build`, the same health wait, the same PATCH
# of the issue's field), one after the other in each run. Cases: the first deploy, and a
# redeploy after a commit that changes only the web service (an environment variable of
# `wordpress`). Prints medians of wall time.
#
#   bench/compose-sample.sh          # RUNS=3 by default
#
# Needs: Docker, docker-compose, git, curl, python3 and the images of tests/images.sh.
set -euo pipefail
RUNS=${RUNS:-3}
source "$(dirname "$0")/lib.sh"
bench_start docker-compose git curl python3
for img in mariadb:10.6.4-focal wordpress:latest; do
  docker image inspect "$img" >/dev/null 2>&1 || { echo "bench: $img is missing: run tests/images.sh"; exit 1; }
done
SAMPLE=$root/../shared/fixtures/compose/awesome-compose/wordpress-mysql
[ -f "$SAMPLE/compose.yaml" ] || { echo "bench: the sample is missing at $SAMPLE"; exit 1; }
W=$(mktemp -d /tmp/benchctl-sample-bench-XXXXXX)
TOKEN=bench-token
tport=$(free_port)
python3 "$root/bench/fake_tracker.py" "$tport" "$TOKEN" &
tracker=$!
export BENCHCTL_CACHE_DIR=$W/cache BENCHCTL_PUBLIC_HOST=127.0.0.1 CI=1
export BENCHCTL_TRACKER_URL="http://127.0.0.1:$tport" BENCHCTL_TRACKER_TOKEN=$TOKEN BENCHCTL_TRACKER_ORG_ID=bench
cleanup() {
  "$BENCHCTL" teardown BENW-1 --keep-link >/dev/null 2>&1 || true
  (cd "$W/pipe" 2>/dev/null && docker-compose -p benchwp down -v >/dev/null 2>&1) || true
  kill "$tracker" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/repo"
cp -R "$SAMPLE/." "$W/repo/"
chmod -R u+w "$W/repo"
git -C "$W/repo" init -q -b main
git -C "$W/repo" add -A
git -C "$W/repo" -c user.name=b -c user.email=b@b commit -qm sample
git -C "$W/repo" checkout -q -b feature/BENW-1-wordpress
# a web-only commit: one environment variable of the wordpress service
commit_web() {
  (cd "$W/repo" && sed -i '/BENCH_MARK=/d' compose.yaml &&
    sed -i "s/^\(      - WORDPRESS_DB_NAME=wordpress\)\r\?$/\1\n      - BENCH_MARK=$1/" compose.yaml &&
    grep -q "BENCH_MARK=$1" compose.yaml &&
    git -c user.name=b -c user.email=b@b commit -qam "$1")
}
wait_installer() { # base url
  for _ in $(seq 1 2400); do
    curl -fsS "$1/wp-admin/install.php" 2>/dev/null | grep -q Installation && return 0
    sleep 0.05
  done
  echo "bench: $1 never answered" >&2; return 1
}
patch() { # url
  curl -s -f -o /dev/null -X PATCH -H "Authorization: OAuth $TOKEN" -H "X-Org-ID: bench" \
    -H "Content-Type: application/json" -d "{\"benchLink\": \"$1\"}" \
    "http://127.0.0.1:$tport/v3/issues/BENW-1"
}

benchctl_deploy() { # deploys, waits, links (benchctl's own PATCH)
  url=$("$BENCHCTL" --json deploy feature/BENW-1-wordpress --repo "$W/repo" --ready-timeout 240 |
    sed -n 's/.*"url": "\([^"]*\)".*/\1/p')
  wait_installer "${url%/}"
}
pipeline_deploy() {
  if [ -d "$W/pipe" ]; then
    git -C "$W/pipe" pull -q --ff-only
  else
    git clone -q --depth 1 -b feature/BENW-1-wordpress "file://$W/repo" "$W/pipe"
  fi
  (cd "$W/pipe" && docker-compose -p benchwp up -d --build >/dev/null 2>&1)
  port=$(cd "$W/pipe" && docker-compose -p benchwp port wordpress 80 | sed 's/.*://')
  wait_installer "http://127.0.0.1:$port"
  patch "http://127.0.0.1:$port/"
}
reset() {
  "$BENCHCTL" teardown BENW-1 --keep-link >/dev/null 2>&1 || true
  (cd "$W/pipe" 2>/dev/null && docker-compose -p benchwp down -v >/dev/null 2>&1) || true
  rm -rf "$W/pipe"
}

declare -A T
for run in $(seq 1 "$RUNS"); do
  for way in benchctl pipeline; do
    reset
    commit_web "first-$run-$way"
    t0=$(now); "${way}_deploy"; t1=$(now)
    T[$way-first]+="$(echo "$t1 - $t0" | bc) "
    commit_web "second-$run-$way"
    t0=$(now); "${way}_deploy"; t1=$(now)
    T[$way-redeploy]+="$(echo "$t1 - $t0" | bc) "
  done
done
reset

report_first_redeploy "$RUNS" "first deploy (wordpress-mysql)"
