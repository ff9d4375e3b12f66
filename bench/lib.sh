# Shared by the benchmarks (sourced, after `set -euo pipefail`): the checks and the build they
# start with, a free loopback port, the small busybox web app as a git repository, and the
# timing and the table of the side-by-side Compose benchmarks.

# bench_start TOOL...: stops unless every TOOL and the Docker engine are there, then builds
# benchctl (release). Sets `root` (the project, also made the working directory) and `BENCHCTL`.
bench_start() {
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cd "$root"
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing"; exit 1; }
  done
  docker info >/dev/null 2>&1 || { echo "bench: the Docker engine is not reachable"; exit 1; }
  echo "bench: building benchctl (release)" >&2
  cargo build --release --quiet --locked
  BENCHCTL=$root/target/release/benchctl
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# busybox_app DIR BRANCH PAGE: a git repository in DIR holding the busybox web app (serving
# PAGE on port 8080) on `main`, with BRANCH checked out.
busybox_app() {
  mkdir -p "$1/www"
  (
    cd "$1"
    git init -q -b main
    cp /bin/busybox busybox
    echo "$3" > www/index.html
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\nCMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n' > Dockerfile
    git add -A && git -c user.name=b -c user.email=b@b commit -qm app
    git checkout -q -b "$2"
  )
}

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# report_first_redeploy RUNS FIRST_LABEL: the table of the associative array T, whose keys are
# benchctl-first, pipeline-first, benchctl-redeploy and pipeline-redeploy (seconds, spaced).
report_first_redeploy() {
  printf '%-34s %10s %10s %7s\n' "case (median of $1 runs, seconds)" benchctl compose ratio
  for c in first redeploy; do
    b=$(echo ${T[benchctl-$c]} | tr ' ' '\n' | median)
    p=$(echo ${T[pipeline-$c]} | tr ' ' '\n' | median)
    label=$([ "$c" = first ] && echo "$2" || echo "web-only redeploy")
    printf '%-34s %10.2f %10.2f %7.2f\n' "$label" "$b" "$p" "$(echo "$b / $p" | bc -l)"
  done
}
