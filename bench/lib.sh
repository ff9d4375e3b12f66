# Shared by bench/sleep.sh and bench/redeploy.sh (sourced, after `set -euo pipefail`): the
# checks and the build they start with, a free loopback port, and the small busybox web app as
# a git repository.

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
