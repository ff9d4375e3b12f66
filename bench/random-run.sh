#!/usr/bin/env bash
# The long mode of the seeded random run (tests/it/random_run.rs): two runners apply generated
# deploys, kills (SIGTERM/SIGKILL at chosen moments, inside the build too), teardowns, gc and
# Tracker faults to a few issues on the real engine, then converge and check that one bench or
# none is left per issue and nothing without benchctl's labels. CI runs two short seeds; this
# runs long ones. A failure prints the seed and the operation log.
#
#   bench/random-run.sh                      # seeds 1..3, 200 operations each, 5 issues
#   SEEDS=17 OPS=400 ISSUES=8 bench/random-run.sh
#   BACKEND=swarm bench/random-run.sh        # one backend only (containers or swarm; both by
#                                            # default; the swarm run makes the engine a
#                                            # single-node swarm when it is in none, then leaves)
#   LOG=1 bench/random-run.sh                # print the operation log of passing seeds too
#
# Needs what the tests need (Docker, git, /bin/busybox). Takes about 2.5 minutes per
# 100 operations on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCHCTL_RANDOM_SEEDS=${SEEDS:-1,2,3}
export BENCHCTL_RANDOM_OPS=${OPS:-200}
export BENCHCTL_RANDOM_ISSUES=${ISSUES:-5}
if [ -n "${LOG:-}" ]; then export BENCHCTL_RANDOM_LOG=1; fi
case "${BACKEND:-}" in
  "") filter=random_run ;;
  containers|swarm) filter=random_run::$BACKEND ;;
  *) echo "random-run: BACKEND is containers or swarm, not $BACKEND" >&2; exit 2 ;;
esac
exec cargo test --locked --test it "$filter" -- --nocapture
