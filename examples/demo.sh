#!/usr/bin/env bash
# The demo: deploys branch feature/DEMO-1-hello of a throw-away repository made from
# examples/app, with no Tracker account and no registry. Needs Docker; installs busybox-static
# when it is missing. DEMO_TEARDOWN=1 removes the bench again at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ ! -x /bin/busybox ]; then
  echo "demo: installing busybox-static (the app's only binary)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q busybox-static; else sudo apt-get install -y -q busybox-static; fi
fi
docker info >/dev/null 2>&1 || { echo "demo: the Docker engine is not reachable (docker info fails)"; exit 1; }

cargo build --quiet --locked
bin="$root/target/debug/benchctl"

repo=$(mktemp -d -t benchctl-demo-XXXXXX)
trap 'rm -rf "$repo"' EXIT
cp -R examples/app/. "$repo/"
cp /bin/busybox "$repo/busybox"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@example.com commit -q -m "demo app"
git -C "$repo" checkout -q -b feature/DEMO-1-hello

export BENCHCTL_PUBLIC_HOST="${BENCHCTL_PUBLIC_HOST:-localhost}"
"$bin" deploy feature/DEMO-1-hello --repo "$repo"
"$bin" list

url=$("$bin" list --json | python3 -c 'import json,sys; print(next(b["url"] for b in json.load(sys.stdin) if b["issue"]=="DEMO-1"))')
port=${url##*:}; port=${port%/}
echo "demo: the bench answers:"
curl -fsS "http://127.0.0.1:$port/" | sed 's/^/  /'

if [ "${DEMO_TEARDOWN:-0}" = 1 ]; then
  "$bin" teardown DEMO-1
else
  echo "demo: remove it with: $bin teardown DEMO-1"
fi
