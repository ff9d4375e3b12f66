#!/usr/bin/env bash
# Benchmarks benchctl against the hand-written pipeline (bench/pipeline.sh), side by side in
# one run, on fixtures made here: a small busybox app and a large repository, both served over
# git:// by `git daemon` on loopback, and a Tracker stand-in on loopback.
# Prints a table of median wall time and peak RSS (/usr/bin/time), and the ratios.
#
#   bench/run.sh              # RUNS=5 by default
#   RUNS=3 SKIP_1G=1 bench/run.sh
#   CASES="3 7" bench/run.sh   # only some cases (numbers as printed)
#   BENCHCTL_BUILDER=buildkit bench/run.sh   # benchctl builds with the engine's BuildKit
#   CASES=9 bench/run.sh       # a dependency step in a BuildKit cache mount (benchctl with
#                              # --builder buildkit) against the pipeline's rebuilt step
#   CASES=8 bench/run.sh       # the swarm backend (makes the engine a single-node swarm when it
#                              # is in none, and leaves it again); not run by default
#
# Needs: Docker, git (with git-daemon), /bin/busybox, python3, curl, /usr/bin/time.
set -euo pipefail
RUNS=${RUNS:-5}
want() { [ -z "${CASES:-}" ] || [[ " $CASES " == *" $1 "* ]]; }
# case 8 changes the engine's swarm state: only when asked for by number
want_swarm() { [[ " ${CASES:-} " == *" 8 "* ]]; }
swarm_inited=0
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in docker git python3 curl /usr/bin/time /bin/busybox; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing"; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "bench: the Docker engine is not reachable"; exit 1; }

echo "bench: building benchctl (release)" >&2
cargo build --release --quiet --locked
BENCHCTL=$root/target/release/benchctl
PIPELINE=$root/bench/pipeline.sh

W=$(mktemp -d /tmp/benchctl-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for id in $(docker ps -aq --filter label=benchctl.bench-run=1) $(docker ps -aq --filter label=pipeline.issue); do
    docker rm -f "$id" >/dev/null 2>&1 || true
  done
  for key in $(docker ps -a --format '{{.Label "benchctl.issue"}}' | grep '^BEN' | sort -u); do
    "$BENCHCTL" teardown "$key" --keep-link >/dev/null 2>&1 || true
  done
  for svc in $(docker service ls -q --filter label=pipeline.issue 2>/dev/null); do docker service rm "$svc" >/dev/null 2>&1 || true; done
  for key in $(docker service ls --format '{{.Name}}' 2>/dev/null | sed -n 's/^benchctl-\(ben-.*\)/\1/p'); do
    BENCHCTL_BACKEND=swarm "$BENCHCTL" teardown "$(echo "$key" | tr '[:lower:]' '[:upper:]')" --keep-link >/dev/null 2>&1 || true
  done
  if [ "$swarm_inited" = 1 ]; then docker swarm leave --force >/dev/null 2>&1 || true; fi
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^(pipeline/|benchctl/ben)' | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- services ---------------------------------------------------------------------------
TOKEN=bench-token
tport=$(free_port)
python3 "$root/bench/fake_tracker.py" "$tport" "$TOKEN" & pids+=($!)
mkdir -p "$W/srv"
gport=$(free_port)
git daemon --reuseaddr --export-all --listen=127.0.0.1 --port="$gport" --base-path="$W/srv" "$W/srv" & pids+=($!)
sleep 0.5
export TRACKER_URL="http://127.0.0.1:$tport" TRACKER_TOKEN=$TOKEN TRACKER_ORG_ID=bench PUBLIC_HOST=127.0.0.1
export BENCHCTL_TRACKER_URL=$TRACKER_URL BENCHCTL_TRACKER_TOKEN=$TOKEN BENCHCTL_TRACKER_ORG_ID=bench
export BENCHCTL_PUBLIC_HOST=127.0.0.1 BENCHCTL_CACHE_DIR="$W/cache" CI=1
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

# --- fixtures -----------------------------------------------------------------------------
echo "bench: making fixtures in $W" >&2
make_small() {
  local d=$W/work/small
  mkdir -p "$d/www"
  git -C "$d" init -q -b main
  cp /bin/busybox "$d/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\nCMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n' > "$d/Dockerfile"
  echo "v0" > "$d/www/index.html"
  git -C "$d" add -A && git -C "$d" commit -q -m init
  git -C "$d" branch feature/BEN-1-small
  git clone -q --bare "$d" "$W/srv/small.git"
}
make_large() {
  local d=$W/work/large
  mkdir -p "$d/service/www" "$d/data"
  git -C "$d" init -q -b main
  cp /bin/busybox "$d/service/busybox"
  printf 'FROM scratch\nCOPY service/busybox /bin/busybox\nCOPY service/www /www\nEXPOSE 8080\nCMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n' > "$d/Dockerfile"
  printf 'data\n' > "$d/.dockerignore"
  echo "v0" > "$d/service/www/index.html"
  # 4000 files of 8 KiB (32 MiB), then 8 commits rewriting 500 of them: tens of MB of history
  python3 - "$d/data" <<'PY'
import os, sys, base64
root = sys.argv[1]
for i in range(4000):
    sub = os.path.join(root, f"d{i % 40:02d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:05d}.txt"), "wb") as f:
        f.write(base64.b64encode(os.urandom(6144)))
PY
  git -C "$d" add -A && git -C "$d" commit -q -m init
  for c in 1 2 3 4 5 6 7 8; do
    python3 - "$d/data" "$c" <<'PY'
import os, sys, base64
root, c = sys.argv[1], int(sys.argv[2])
for i in range(c * 500 % 4000, c * 500 % 4000 + 500):
    with open(os.path.join(root, f"d{i % 40:02d}", f"f{i:05d}.txt"), "wb") as f:
        f.write(base64.b64encode(os.urandom(6144)))
PY
    git -C "$d" add -A && git -C "$d" commit -q -m "history $c"
  done
  git -C "$d" branch feature/BEN-9-large
  git clone -q --bare "$d" "$W/srv/large.git"
}
# a dependency step: the pipeline's (classic) Dockerfile "downloads" 50 MiB and waits 2 s on
# every build; benchctl's (benchctl.toml names Dockerfile.buildkit) does it into a BuildKit
# cache mount only when the cache is empty
make_deps() {
  local d=$W/work/deps
  mkdir -p "$d/www"
  git -C "$d" init -q -b main
  cp /bin/busybox "$d/busybox"
  local head='FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n'
  local tail='EXPOSE 8080\nCMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n'
  printf "${head}"'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c 52428800 /dev/urandom > /deps.bin && /bin/busybox sleep 2 && /bin/busybox rm /deps.bin && echo fetched > /www/deps"]\n'"${tail}" > "$d/Dockerfile"
  printf "${head}"'RUN --mount=type=cache,id=benchctl-bench-deps,target=/cache ["/bin/busybox", "sh", "-c", "if [ ! -f /cache/deps ]; then /bin/busybox head -c 52428800 /dev/urandom > /cache/deps && /bin/busybox sleep 2; fi; echo cached > /www/deps"]\n'"${tail}" > "$d/Dockerfile.buildkit"
  printf 'dockerfile = "Dockerfile.buildkit"\n' > "$d/benchctl.toml"
  echo "v0" > "$d/www/index.html"
  git -C "$d" add -A && git -C "$d" commit -q -m init
  git -C "$d" branch feature/BEN-10-deps
  git clone -q --bare "$d" "$W/srv/deps.git"
}
make_small
if want 4; then make_large; fi
if want 9; then make_deps; fi
DEPS="git://127.0.0.1:$gport/deps.git"
SMALL="git://127.0.0.1:$gport/small.git"
LARGE="git://127.0.0.1:$gport/large.git"

# a new commit on a fixture branch (not timed)
new_commit() { # fixture branch
  local d=$W/work/$1
  git -C "$d" checkout -q "$2"
  local f=www/index.html; [ "$1" = large ] && f=service/www/index.html
  date +%s%N > "$d/$f"
  git -C "$d" commit -q -am "change"
  git -C "$d" push -q -f "$W/srv/$1.git" "$2:$2"
}

# --- measuring ----------------------------------------------------------------------------
# measure NAME cmd... : runs once, appends "wall_seconds maxrss_kib" to $W/NAME
measure() {
  local name=$1; shift
  if ! /usr/bin/time -f "%e %M" -o "$W/time.out" "$@" >"$W/cmd.out" 2>"$W/cmd.err"; then
    echo "bench: '$*' failed:" >&2; cat "$W/cmd.err" "$W/cmd.out" >&2; exit 1
  fi
  tail -n 1 "$W/time.out" >> "$W/$name"
}
median() { # file column
  awk -v c="$2" '{print $c}' "$W/$1" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

ours() { "$BENCHCTL" deploy "$@"; }

if want 1; then
echo "bench: case 1, first deploy of an issue (small app)" >&2
ours feature/BEN-1-small --issue BEN-100 --repo "$SMALL" >/dev/null 2>&1  # warm the clone cache, as an earlier issue of the repository would
"$BENCHCTL" teardown BEN-100 >/dev/null 2>&1
for i in $(seq 1 "$RUNS"); do
  measure first_ours "$BENCHCTL" deploy feature/BEN-1-small --issue "BEN-1$i" --repo "$SMALL"
  measure first_pipe "$PIPELINE" "$SMALL" feature/BEN-1-small "BEN-1$i"
  "$BENCHCTL" teardown "BEN-1$i" >/dev/null 2>&1
  docker rm -f "pipeline-ben-1$i" >/dev/null
  docker images -q "pipeline/ben-1$i" | xargs -r docker rmi -f >/dev/null 2>&1 || true
done

fi

if want 2; then
echo "bench: case 2, redeploy after one new commit (small app)" >&2
ours feature/BEN-1-small --issue BEN-2 --repo "$SMALL" >/dev/null 2>&1
"$PIPELINE" "$SMALL" feature/BEN-1-small BEN-2
for i in $(seq 1 "$RUNS"); do
  new_commit small feature/BEN-1-small
  measure redeploy_ours "$BENCHCTL" deploy feature/BEN-1-small --issue BEN-2 --repo "$SMALL"
  measure redeploy_pipe "$PIPELINE" "$SMALL" feature/BEN-1-small BEN-2
done

fi

if want 3; then
echo "bench: case 3, no-op redeploy of the same commit (small app)" >&2
if ! want 2; then
  "$BENCHCTL" deploy feature/BEN-1-small --issue BEN-2 --repo "$SMALL" >/dev/null 2>&1
  "$PIPELINE" "$SMALL" feature/BEN-1-small BEN-2
fi
# in blocks, not interleaved: a pipeline run leaves the engine busy removing its old container
# for a moment, which a 30 ms no-op right after it would pay for
for i in $(seq 1 "$RUNS"); do
  measure noop_ours "$BENCHCTL" deploy feature/BEN-1-small --issue BEN-2 --repo "$SMALL"
done
for i in $(seq 1 "$RUNS"); do
  measure noop_pipe "$PIPELINE" "$SMALL" feature/BEN-1-small BEN-2
done

fi

if want 4; then
echo "bench: case 4, redeploy after one new commit (large repository)" >&2
ours feature/BEN-9-large --issue BEN-9 --repo "$LARGE" >/dev/null 2>&1
"$PIPELINE" "$LARGE" feature/BEN-9-large BEN-9
for i in $(seq 1 "$RUNS"); do
  new_commit large feature/BEN-9-large
  measure large_ours "$BENCHCTL" deploy feature/BEN-9-large --issue BEN-9 --repo "$LARGE"
  measure large_pipe "$PIPELINE" "$LARGE" feature/BEN-9-large BEN-9
done

fi

if want 5; then
echo "bench: case 5, 8 concurrent first deploys of different issues (small app)" >&2
for i in $(seq 1 "$RUNS"); do
  start=$(date +%s.%N)
  dpids=()
  for n in 1 2 3 4 5 6 7 8; do
    "$BENCHCTL" deploy feature/BEN-1-small --issue "BEN-5$i$n" --repo "$SMALL" >/dev/null 2>&1 &
    dpids+=($!)
  done
  for p in "${dpids[@]}"; do wait "$p" || { echo "bench: a concurrent deploy failed" >&2; exit 1; }; done
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | awk '{print $1 - $3}') 0" >> "$W/par_ours"
  for n in 1 2 3 4 5 6 7 8; do "$BENCHCTL" teardown "BEN-5$i$n" >/dev/null 2>&1; done
done

fi

if want 6; then
echo "bench: case 6, list with 200 benches" >&2
"$BENCHCTL" deploy feature/BEN-1-small --issue BEN-600 --repo "$SMALL" >/dev/null 2>&1
img=$(docker inspect --format '{{.Config.Image}}' benchctl-ben-600)
for n in $(seq 1 199); do
  docker create --name "benchctl-bench-list-$n" --label benchctl.managed=true --label benchctl.bench-run=1 \
    --label "benchctl.issue=BENL-$n" --label benchctl.branch=feature/x --label benchctl.commit=0000 \
    "$img" >/dev/null
done
for i in $(seq 1 "$RUNS"); do
  measure list_ours "$BENCHCTL" list --json
  measure help_ours "$BENCHCTL" --help
done
n_listed=$("$BENCHCTL" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

fi

if [ "${SKIP_1G:-0}" != 1 ] && want 7; then
  echo "bench: case 7, peak memory for a 1 GiB build context" >&2
  d=$W/work/huge
  mkdir -p "$d/www" "$d/blobs"
  cp /bin/busybox "$d/busybox"
  cp "$W/work/small/Dockerfile" "$d/Dockerfile"
  echo huge > "$d/www/index.html"
  for n in $(seq 1 64); do head -c 16777216 /dev/urandom > "$d/blobs/b$n"; done
  git -C "$d" init -q -b main && git -C "$d" add -A && git -C "$d" commit -q -m huge
  git -C "$d" branch feature/BEN-7-huge
  measure huge_ours "$BENCHCTL" deploy feature/BEN-7-huge --repo "$d" --ready-timeout 120
fi

if want 9; then
  echo "bench: case 9, redeploy of a new commit with a dependency step (BuildKit cache mount)" >&2
  ours feature/BEN-10-deps --issue BEN-10 --repo "$DEPS" --builder buildkit >/dev/null 2>&1
  "$PIPELINE" "$DEPS" feature/BEN-10-deps BEN-10
  for i in $(seq 1 "$RUNS"); do
    new_commit deps feature/BEN-10-deps
    measure deps_ours "$BENCHCTL" deploy feature/BEN-10-deps --issue BEN-10 --repo "$DEPS" --builder buildkit
    measure deps_pipe "$PIPELINE" "$DEPS" feature/BEN-10-deps BEN-10
  done
fi

if want_swarm; then
  echo "bench: case 8, redeploy after one new commit on a single-node swarm (small app)" >&2
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    swarm_inited=1
  fi
  swarm_ours() { BENCHCTL_BACKEND=swarm BENCHCTL_PUBLISH_MODE=host "$BENCHCTL" deploy "$@"; }
  swarm_ours feature/BEN-1-small --issue BEN-8 --repo "$SMALL" >/dev/null 2>&1
  "$root/bench/pipeline-swarm.sh" "$SMALL" feature/BEN-1-small BEN-8
  for i in $(seq 1 "$RUNS"); do
    new_commit small feature/BEN-1-small
    measure swarm_ours env BENCHCTL_BACKEND=swarm BENCHCTL_PUBLISH_MODE=host "$BENCHCTL" deploy feature/BEN-1-small --issue BEN-8 --repo "$SMALL"
    measure swarm_pipe "$root/bench/pipeline-swarm.sh" "$SMALL" feature/BEN-1-small BEN-8
  done
fi

# --- report -------------------------------------------------------------------------------
row() { # label ours_file pipe_file target
  local ow orss pw prss ratio
  [ -f "$W/$2" ] || return 0
  ow=$(median "$2" 1); orss=$(median "$2" 2)
  if [ -n "$3" ]; then
    pw=$(median "$3" 1); prss=$(median "$3" 2)
    ratio=$(awk -v a="$ow" -v b="$pw" 'BEGIN {printf "%.2f", a / b}')
    printf '| %-44s | %7.2f s | %6.1f MiB | %7.2f s | %6.1f MiB | %5s | %-7s |\n' "$1" "$ow" "$(awk -v k="$orss" 'BEGIN{print k/1024}')" "$pw" "$(awk -v k="$prss" 'BEGIN{print k/1024}')" "$ratio" "$4"
  else
    printf '| %-44s | %7.3f s | %6.1f MiB | %9s | %10s | %5s | %-7s |\n' "$1" "$ow" "$(awk -v k="$orss" 'BEGIN{print k/1024}')" "-" "-" "-" "$4"
  fi
}
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), Docker engine $(docker version --format '{{.Server.Version}}'), storage $(docker info --format '{{.Driver}}'); runs per case: $RUNS (medians)"
echo
echo "| case                                         | benchctl  | peak RSS   | pipeline  | peak RSS   | ratio | target  |"
echo "|----------------------------------------------|-----------|------------|-----------|------------|-------|---------|"
row "first deploy of an issue (small app)" first_ours first_pipe "<= 0.8"
row "redeploy after one new commit (small app)" redeploy_ours redeploy_pipe "<= 0.7"
row "no-op redeploy, same commit (small app)" noop_ours noop_pipe "<= 0.1"
row "redeploy after one new commit (large repo)" large_ours large_pipe "<= 0.3"
if [ -f "$W/par_ours" ] && [ -f "$W/first_ours" ]; then
one=$(median first_ours 1); par=$(median par_ours 1)
printf '| %-44s | %7.2f s | %10s | %9s | %10s | %5s | %-7s |\n' "8 concurrent first deploys (vs one: $(awk -v a="$par" -v b="$one" 'BEGIN{printf "%.2fx", a/b}'))" "$par" "-" "-" "-" "-" "<= 3x"
fi
row "swarm: redeploy after one new commit (small)" swarm_ours swarm_pipe "<= 1.0"
row "new commit with a dependency step (BuildKit)" deps_ours deps_pipe "<= 0.3"
row "list with ${n_listed:-0} benches" list_ours "" "< 0.2 s"
row "--help" help_ours "" "-"
[ "${SKIP_1G:-0}" != 1 ] && row "deploy with a 1 GiB build context" huge_ours "" "< 64 MiB"
echo
if [ -d "$W/work/large/data" ]; then echo "large repository: $(find "$W/work/large/data" -type f | wc -l) data files, $(du -sh "$W/srv/large.git" | cut -f1) packed history"; fi
