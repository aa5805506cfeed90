#!/usr/bin/env bash
# make bench: the sync (release build) against `lscw simulate pair` in another process,
# at several sizes; prints API calls per asset, wall time and peak memory of the sync
# itself (the simulators are not counted). Figures are ratios from one run: this
# machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes="${BENCH_SIZES:-2000 10000}"
cargo build --quiet --release --bin lscw
bin=target/release/lscw
mkdir -p target/bench
printf '%8s %10s %12s %12s %10s %10s %12s\n' assets run wall_s cw_calls/asset ls_calls/asset peak_MB writes
for n in $sizes; do
  "$bin" simulate pair --assets "$n" --connectwise-listen 127.0.0.1:18580 --lansweeper-listen 127.0.0.1:18590 --speed 100 2>/dev/null &
  sim=$!
  for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/18590) 2>/dev/null && break; sleep 0.2; done
  export CW_BASE_URL=http://127.0.0.1:18580/v4_6_release/apis/3.0 CW_COMPANY_ID=sim CW_PUBLIC_KEY=simpub \
    CW_PRIVATE_KEY=simpriv CW_CLIENT_ID=00000000-0000-4000-8000-00000000c0de CW_TARGET_COMPANY=BlueLightCo \
    LS_API_URL=http://127.0.0.1:18590/api/v2/graphql LS_TOKEN=simtoken LS_SITE_ID=sim-site
  unset SYNC_TABLE AWS_ENDPOINT_URL
  for run in first repeat; do
    report="target/bench/sync-$n-$run.json"
    /usr/bin/time -f '%e %M' -o target/bench/time "$bin" sync --report "$report" >/dev/null 2>&1
    read -r wall kb < target/bench/time
    python3 - "$report" "$n" "$run" "$wall" "$kb" <<'PY'
import json, sys
report, n, run, wall, kb = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
r = json.load(open(report))
calls = r["apiCalls"]
print(f'{n:8d} {run:>10} {wall:12.2f} {calls["connectwise"]/n:12.3f} {calls["lansweeper"]/n:10.4f} {kb/1024:10.1f} {r["created"]+r["modified"]:12d}')
PY
  done
  kill "$sim"; wait "$sim" 2>/dev/null || true
done
