#!/usr/bin/env bash
# The reference for the swarm backend: the script a team writes by hand for a single-node
# swarm (no registry): clone, build, create the service or update it in place (start-first,
# rollback on failure), wait until the task's port answers, set the Tracker field.
# usage: pipeline-swarm.sh <repo-url> <branch> <ISSUE-KEY>
# env:   TRACKER_URL, TRACKER_TOKEN, TRACKER_ORG_ID, PUBLIC_HOST (default: hostname)
set -euo pipefail
url=$1 branch=$2 issue=$3
key=$(echo "$issue" | tr '[:upper:]' '[:lower:]')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git clone --quiet --depth 1 --single-branch --branch "$branch" "$url" "$work/src"
commit=$(git -C "$work/src" rev-parse --short=12 HEAD)
image="pipeline/$key:$commit"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$work/src" >/dev/null
svc="pipeline-$key"
# without -d the docker CLI waits until the service converged (the new task runs)
if docker service inspect "$svc" >/dev/null 2>&1; then
  docker service update --quiet --image "$image" --update-order start-first \
    --update-failure-action rollback "$svc" >/dev/null 2>&1
else
  docker service create --quiet --name "$svc" --label "pipeline.issue=$issue" \
    --publish mode=host,target=8080 --update-order start-first \
    --update-failure-action rollback "$image" >/dev/null 2>&1
fi
port=$(docker service ps "$svc" --filter desired-state=running --format '{{.Ports}}' \
  | sed -n 's/^[^:]*:\([0-9]*\)->8080.*/\1/p' | head -n 1)
for _ in $(seq 1 600); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done
curl -s -f -o /dev/null -X PATCH \
  -H "Authorization: OAuth $TRACKER_TOKEN" -H "X-Org-ID: $TRACKER_ORG_ID" \
  -H "Content-Type: application/json" \
  -d "{\"benchLink\": \"http://${PUBLIC_HOST:-$(hostname)}:$port/\"}" \
  "$TRACKER_URL/v3/issues/$issue"
