#!/usr/bin/env bash
# CPU seconds (user + system) of `sfbulk run` (loads both bundled connectors) and `sfbulk load`
# (loads one), alternating as a user's day does, sharing one start-up cache (docs/benchmarks.md).
# Usage, from the repo root: bash bench/startup_mix.sh [TREE] [ROUNDS]
#   TREE: a checkout to measure (default: this one), e.g. mkdir -p /tmp/b && git archive <rev> | tar -x -C /tmp/b
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tree=$(cd "${1:-$repo}" && pwd)
rounds=${2:-6}
py=$repo/.venv/bin/python
work=$(mktemp -d)
port=8281  # the port examples/createJob.xml names
if curl -s -o /dev/null "http://127.0.0.1:$port/"; then echo "port $port is taken: stop what serves it" >&2; exit 1; fi
"$repo/.venv/bin/sfbulk" emulator --port "$port" >"$work/emulator.log" 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null; wait $emulator 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
export SFBULK_CACHE_DIR=$work/cache PYTHONPATH=$tree
export SFBULK_API_URL=http://127.0.0.1:$port SFBULK_TOKEN_ENDPOINT=http://127.0.0.1:$port
export SFBULK_CLIENT_ID=sfbulk-demo-client-id SFBULK_CLIENT_SECRET=sfbulk-demo-client-secret
export SFBULK_REFRESH_TOKEN=sfbulk-demo-refresh-token SFBULK_REGISTRY_DIR=$work/registry
cp "$repo/examples/contacts.csv" "$work/contacts.csv"
cd "$tree"
"$py" -m compileall -q sfbulk >/dev/null  # bytecode for both trees (this machine sets PYTHONDONTWRITEBYTECODE)
cpu() {
  if ! /usr/bin/time -o "$work/t" -f "%U %S" "$@" >"$work/out" 2>&1; then
    echo "failed: $*" >&2; cat "$work/out" >&2; exit 1
  fi
  awk '{printf "%.2f", $1 + $2}' "$work/t"
}
runs=() loads=()
for _ in $(seq "$rounds"); do
  runs+=("$(cpu "$py" -m sfbulk run examples/flows.yaml --proxy createJob --input examples/createJob.xml)")
  loads+=("$(cpu "$py" -m sfbulk load "$work/contacts.csv" --object Contact)")
done
echo "$tree sfbulk run  CPU s: ${runs[*]}"
echo "$tree sfbulk load CPU s: ${loads[*]}"
