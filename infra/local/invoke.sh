#!/usr/bin/env bash
# make invoke FN=<function>: moto, both simulators with a staged sample run, cargo lambda
# watch with the functions' environment, then `cargo lambda invoke FN` with the
# function's sample event from infra/events/. Everything stops when it is done.
set -euo pipefail
cd "$(dirname "$0")/../.."
fn="${1:?usage: invoke.sh <function>}"
event="infra/events/$fn.json"
[ -f "$event" ] || { echo "no sample event $event" >&2; exit 2; }
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p target
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; echo "port $1 never opened" >&2; return 1; }

setsid .venv/bin/moto_server -H 127.0.0.1 -p 5055 >target/moto.log 2>&1 & pids+=($!)
wait_port 5055
cargo build --quiet --bin lscw
rm -f target/dev-env.env
setsid target/debug/lscw dev-env --moto http://127.0.0.1:5055 --env-file target/dev-env.env >target/dev-env.log 2>&1 & pids+=($!)
for _ in $(seq 1 600); do [ -s target/dev-env.env ] && break; sleep 0.2; done
[ -s target/dev-env.env ] || { cat target/dev-env.log >&2; exit 1; }
setsid cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port 9009 --env-file target/dev-env.env >target/watch.log 2>&1 & pids+=($!)
wait_port 9009
cargo lambda invoke "$fn" --invoke-address 127.0.0.1 --invoke-port 9009 --data-file "$event"
echo
