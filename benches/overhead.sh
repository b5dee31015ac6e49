#!/usr/bin/env bash
# The overhead benchmark: a fixed CPU workload (work_70/work_30, a known 70/30 split) run
# without and with a profiler at 100 Hz pushing to a loopback HTTP sink, each run its own
# process (clean peak RSS). Runs caddyprof (examples/overhead) and, when it builds,
# pyroscope-rs (benches/pyroscope-rs, a separate crate: the two cannot share one binary),
# baseline and profiled alternately, RUNS times each, and prints a table of medians.
#
#   benches/overhead.sh                       # 5 runs of each, ~10 s workload
#   RUNS=3 SECONDS_PER_RUN=5 benches/overhead.sh
#   PYROSCOPE_RS=0 benches/overhead.sh        # caddyprof only
#
# Environment: RUNS (5), SECONDS_PER_RUN (10), HZ (100), UPLOAD_RATE (2, seconds),
# PYROSCOPE_RS (auto: 1 if it builds, 0 to skip). The raw JSON lines are kept in
# target/overhead/results-<time>.jsonl. Needs jq or python3 for the table.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
HZ=${HZ:-100}
UPLOAD_RATE=${UPLOAD_RATE:-2}
PYROSCOPE_RS=${PYROSCOPE_RS:-auto}

out_dir=target/overhead
mkdir -p "$out_dir"
results="$out_dir/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"

echo "building examples/overhead (release) …" >&2
cargo build --release --quiet --example overhead
bins=(caddyprof=target/release/examples/overhead)

if [[ $PYROSCOPE_RS != 0 ]]; then
    echo "building benches/pyroscope-rs (release; the first build takes minutes) …" >&2
    if (cd benches/pyroscope-rs && cargo build --release --quiet --locked); then
        bins+=(pyroscope-rs=benches/pyroscope-rs/target/release/overhead-pyroscope-rs)
    elif [[ $PYROSCOPE_RS == 1 ]]; then
        echo "benches/pyroscope-rs does not build" >&2
        exit 1
    else
        echo "benches/pyroscope-rs does not build: caddyprof only" >&2
    fi
fi

rounds=$(target/release/examples/overhead --calibrate --seconds "$SECONDS_PER_RUN")
echo "workload: $rounds rounds (about $SECONDS_PER_RUN s here), $HZ Hz, upload every ${UPLOAD_RATE}s, $RUNS runs each" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

for ((i = 1; i <= RUNS; i++)); do
    for entry in "${bins[@]}"; do
        bin=${entry#*=}
        for mode in baseline profiled; do
            line=$("$bin" "--$mode" --rounds "$rounds" --hz "$HZ" --upload-rate "$UPLOAD_RATE")
            echo "$line" >>"$results"
            echo "run $i ${entry%%=*} $mode: $line" >&2
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $load_before, after: $load_after; results in $results" >&2

# Per profiler, baseline run i is paired with profiled run i (they ran back to back).
# Columns: median (min..max) over the pairs.
if command -v jq >/dev/null; then
    jq -s -r '
    def median: sort | if length == 0 then null
        elif length % 2 == 1 then .[length / 2 | floor]
        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def r(n): if . == null then "–" else (. * pow(10; n) | round) / pow(10; n) | tostring end;
    def stat(n): "\(median | r(n)) (\(min | r(n))..\(max | r(n)))";
    . as $all
    | ($all | map(.profiler) | unique) as $profilers
    | "| profiler | CPU overhead % | CPU overhead % excl. start | wall overhead % | added peak RSS MiB | profiled peak RSS MiB | share of work_70 % (true) | split error, points | stop s | samples / expected | own CPU % (handler + threads) |",
      "|---|---|---|---|---|---|---|---|---|---|---|",
      ($profilers[] as $p
       | [$all[] | select(.profiler == $p and .mode == "baseline")] as $b
       | [$all[] | select(.profiler == $p and .mode == "profiled")] as $f
       | [range(0; [($b | length), ($f | length)] | min)] as $i
       | "| \($p) "
         + "| \([$i[] | ($f[.].cpu_s / $b[.].cpu_s - 1) * 100] | stat(2)) "
         + "| \([$i[] | (($f[.].cpu_s - $f[.].start_cpu_s) / $b[.].cpu_s - 1) * 100] | stat(2)) "
         + "| \([$i[] | ($f[.].wall_s / $b[.].wall_s - 1) * 100] | stat(2)) "
         + "| \([$i[] | $f[.].max_rss_mib - $b[.].max_rss_mib] | stat(1)) "
         + "| \([$f[].max_rss_mib] | stat(1)) "
         + "| \([$f[].share_70] | median | r(1)) (\([$f[].true_share_70] | median | r(1))) "
         + "| \([$f[].split_error_points] | stat(2)) "
         + "| \([$f[].stop_s] | stat(3)) "
         + "| \([$f[] | .samples / (.cpu_s * .hz)] | stat(2)) "
         + "| \(if $f[0].handler_s == null then "–" else ([$i[] | ($f[.].handler_s + $f[.].profiler_threads_cpu_s) / $b[.].cpu_s * 100] | stat(2)) end) |")
    ' "$results"
else
    python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def stat(xs, n):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    return f"{round(statistics.median(xs), n)} ({round(min(xs), n)}..{round(max(xs), n)})"
print("| profiler | CPU overhead % | CPU overhead % excl. start | wall overhead % | added peak RSS MiB | profiled peak RSS MiB | share of work_70 % (true) | split error, points | stop s | samples / expected | own CPU % (handler + threads) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for p in sorted({r["profiler"] for r in rows}):
    b = [r for r in rows if r["profiler"] == p and r["mode"] == "baseline"]
    f = [r for r in rows if r["profiler"] == p and r["mode"] == "profiled"]
    pairs = list(zip(b, f))
    share = statistics.median([r["share_70"] for r in f if r["share_70"] is not None] or [float("nan")])
    true = statistics.median([r["true_share_70"] for r in f])
    print(f"| {p} | {stat([(y['cpu_s'] / x['cpu_s'] - 1) * 100 for x, y in pairs], 2)} "
          f"| {stat([((y['cpu_s'] - y['start_cpu_s']) / x['cpu_s'] - 1) * 100 for x, y in pairs], 2)} "
          f"| {stat([(y['wall_s'] / x['wall_s'] - 1) * 100 for x, y in pairs], 2)} "
          f"| {stat([y['max_rss_mib'] - x['max_rss_mib'] for x, y in pairs], 1)} "
          f"| {stat([r['max_rss_mib'] for r in f], 1)} "
          f"| {round(share, 1)} ({round(true, 1)}) "
          f"| {stat([r['split_error_points'] for r in f], 2)} "
          f"| {stat([r['stop_s'] for r in f], 3)} "
          f"| {stat([r['samples'] / (r['cpu_s'] * r['hz']) for r in f], 2)} "
          f"| {stat([(y['handler_s'] + y['profiler_threads_cpu_s']) / x['cpu_s'] * 100 for x, y in pairs if y.get('handler_s') is not None], 2)} |")
EOF
fi
