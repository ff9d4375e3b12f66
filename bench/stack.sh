#!/usr/bin/env bash
# Benchmarks a multi-service bench: benchctl against a hand-written `docker-compose` (v1, from
# Debian) pipeline, side by side, on a three-service branch made here (web built from the
# branch, a "db" stand-in image keeping a counter in a named volume, a one-shot "migrate").
# Cases: the first deploy, and a redeploy after a web-only commit. Prints medians of wall time.
#
#   bench/stack.sh            # RUNS=5 by default
#   RUNS=3 bench/stack.sh
#
# Needs: Docker, docker-compose, git, /bin/busybox, curl.
set -euo pipefail
RUNS=${RUNS:-5}
source "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in docker docker-compose git curl /bin/busybox; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing"; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "bench: the Docker engine is not reachable"; exit 1; }
echo "bench: building benchctl (release)" >&2
cargo build --release --quiet --locked
BENCHCTL=$root/target/release/benchctl
DB=benchctl-bench/stack-db:1
W=$(mktemp -d /tmp/benchctl-stack-bench-XXXXXX)
export BENCHCTL_CACHE_DIR=$W/cache BENCHCTL_PUBLIC_HOST=127.0.0.1 CI=1
cleanup() {
  "$BENCHCTL" teardown BENS-1 --keep-link >/dev/null 2>&1 || true
  (cd "$W/pipe" 2>/dev/null && docker-compose -p benchpipe down -v --rmi local >/dev/null 2>&1) || true
  docker rmi -f "$DB" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

# --- fixtures ----------------------------------------------------------------------------
mkdir -p "$W/db" "$W/repo"
cp /bin/busybox "$W/db/busybox"
cat > "$W/db/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
CMD ["/bin/busybox", "sh", "-c", "mkdir -p /data; c=$(cat /data/count 2>/dev/null || echo 0); echo $((c+1)) > /data/count; exec /bin/busybox httpd -f -p 5432 -h /data"]
EOF
DOCKER_BUILDKIT=0 docker build -q -t "$DB" "$W/db" >/dev/null
cd "$W/repo"
git init -q -b main
cp /bin/busybox busybox
cat > compose.yaml <<EOF
services:
  web:
    build: .
    ports: ["8080"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  db:
    image: $DB
    volumes: ["data:/data"]
    healthcheck:
      test: ["CMD", "/bin/busybox", "test", "-f", "/data/count"]
      interval: 300ms
      retries: 20
  migrate:
    image: $DB
    entrypoint: ["/bin/busybox", "sh", "-c"]
    command: ["echo yes > /data/migrated"]
    volumes: ["data:/data"]
    depends_on:
      db: {condition: service_healthy}
volumes:
  data:
EOF
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY web.sh /web.sh\nCMD ["/bin/busybox", "sh", "/web.sh"]\n' > Dockerfile
web() {
  cat > web.sh <<EOF
mkdir -p /tmp/www
echo "$1" > /tmp/www/index.html
exec /bin/busybox httpd -f -p 8080 -h /tmp/www
EOF
}
web v0
git add -A && git -c user.name=b -c user.email=b@b commit -qm v0
git checkout -q -b feature/BENS-1-shop
cd "$root"

wait_for() { # url text
  for _ in $(seq 1 600); do
    [ "$(curl -fsS "$1" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.05
  done
  echo "bench: $1 never answered $2" >&2; return 1
}
commit_web() { (cd "$W/repo" && web "$1" && git -c user.name=b -c user.email=b@b commit -qam "$1"); }

# --- the two ways ---------------------------------------------------------------------------
benchctl_deploy() { # expected text
  url=$("$BENCHCTL" --json deploy feature/BENS-1-shop --repo "$W/repo" --no-link | sed -n 's/.*"url": "\([^"]*\)".*/\1/p')
  wait_for "$url" "$1"
}
pipeline_deploy() { # expected text: clone or pull, compose up with builds, wait
  if [ -d "$W/pipe" ]; then
    git -C "$W/pipe" pull -q --ff-only
  else
    git clone -q --depth 1 -b feature/BENS-1-shop "file://$W/repo" "$W/pipe"
  fi
  (cd "$W/pipe" && DOCKER_BUILDKIT=0 docker-compose -p benchpipe up -d --build >/dev/null 2>&1)
  port=$(cd "$W/pipe" && docker-compose -p benchpipe port web 8080 | sed 's/.*://')
  wait_for "http://127.0.0.1:$port/" "$1"
}
reset() {
  "$BENCHCTL" teardown BENS-1 --keep-link >/dev/null 2>&1 || true
  (cd "$W/pipe" 2>/dev/null && docker-compose -p benchpipe down -v >/dev/null 2>&1) || true
  rm -rf "$W/pipe"
}


declare -A T
n=0
for run in $(seq 1 "$RUNS"); do
  for way in benchctl pipeline; do
    reset
    commit_web "first-$run-$way"
    t0=$(now); "${way}_deploy" "first-$run-$way"; t1=$(now)
    T[$way-first]+="$(echo "$t1 - $t0" | bc) "
    commit_web "second-$run-$way"
    t0=$(now); "${way}_deploy" "second-$run-$way"; t1=$(now)
    T[$way-redeploy]+="$(echo "$t1 - $t0" | bc) "
  done
  n=$((n + 1))
done
reset

report_first_redeploy "$n" "first deploy (3 services)"
