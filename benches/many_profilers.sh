#!/usr/bin/env bash
# The many-profilers benchmark: 1, 100 and 1,000 Pyroscope profilers in one process pushing
# to one loopback server (examples/many_profilers.rs; the server is a child process), for a
# fixed time each, then the same profilers made to differ (--unshared: none shares its
# collection with another). Prints a table: peak RSS and RSS per profiler, the most sockets
# and threads open at once, CPU time, and the profiles delivered of those due. The numbers are
# in docs/benchmarks.md, "Many profilers".
#
#   benches/many_profilers.sh                        # 30 s per run, cpu heap goroutine, 5 s windows
#   SECONDS_PER_RUN=10 COUNTS="1 100" benches/many_profilers.sh
#
# Environment: SECONDS_PER_RUN (30), UPLOAD_RATE (5, seconds), TYPES (cpu,heap,goroutine),
# COUNTS ("1 100 1000"), UNSHARED_COUNTS ("100 1000"; "" to skip). The raw JSON lines are
# kept in target/many_profilers/results-<time>.jsonl. Needs python3 for the table.
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-30}
UPLOAD_RATE=${UPLOAD_RATE:-5}
TYPES=${TYPES:-cpu,heap,goroutine}
COUNTS=${COUNTS:-1 100 1000}
UNSHARED_COUNTS=${UNSHARED_COUNTS-100 1000}

out_dir=target/many_profilers
mkdir -p "$out_dir"
results="$out_dir/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"

echo "building examples/many_profilers (release) …" >&2
cargo build --release --quiet --locked --example many_profilers
bin=target/release/examples/many_profilers
echo "open files limit (soft): $(ulimit -n); load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

run() {
    local line
    line=$(RUST_LOG=error "$bin" --seconds "$SECONDS_PER_RUN" --upload-rate "$UPLOAD_RATE" \
        --types "$TYPES" "$@")
    echo "$line" >>"$results"
    echo "$line" >&2
}
for n in $COUNTS; do run --profilers "$n"; done
for n in $UNSHARED_COUNTS; do run --profilers "$n" --unshared; done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); results in $results" >&2

python3 - "$results" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| profilers | shared | peak RSS MiB | KiB per profiler | sockets | threads | CPU s | delivered / due | stop ms |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['profilers']} | {'no' if r['unshared'] else 'yes'} | {r['peak_rss_mib']:.1f} "
          f"| {r['peak_rss_per_profiler_kib']:.0f} | {r['max_sockets']} | {r['max_threads']} "
          f"| {r['cpu_s']:.1f} | {r['delivered']} / {r['due']} ({100 * r['delivered_share']:.1f} %) "
          f"| {r['stop_ms']} |")
EOF
