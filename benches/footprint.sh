#!/usr/bin/env bash
# The footprint benchmark: what a profiler adds to a program's resident memory in the
# binaries people ship, with debug info. The footprint workload (examples/footprint/
# workload.rs: 512 distinct functions on two threads, the set in use widening over the first
# WIDEN seconds, then fixed) runs without and with a profiler at 100 Hz pushing to a loopback
# sink, each run its own process; a thread reads /proc/self/smaps_rollup every second.
#
# caddyprof (examples/footprint: cpu + heap + goroutine, the sampling allocator installed)
# is built three times in release, with CARGO_PROFILE_RELEASE_DEBUG=true, line-tables-only
# and false, each in its own target directory (target/footprint/debug-LEVEL, cached);
# pyroscope-rs (benches/pyroscope-rs, `footprint` binary: CPU only, its one profiler) once,
# with full debug info. Baseline and profiled runs alternate, RUNS times for each build,
# and a table of medians (min..max) over the pairs is printed.
#
#   benches/footprint.sh                         # 1 run of each, 240 s: about 35 minutes
#   RUNS=3 SECONDS_PER_RUN=180 benches/footprint.sh
#   LEVELS=true PYROSCOPE_RS=0 benches/footprint.sh
#
# Environment: RUNS (1), SECONDS_PER_RUN (240), WIDEN (60, seconds the set of functions
# widens), STEADY (60, the last seconds averaged as the steady state), HZ (100), UPLOAD_RATE
# (5, seconds), LEVELS ("true line-tables-only false"), PYROSCOPE_RS (auto: 1 if it builds,
# 0 to skip). The JSON lines go to target/footprint/results-<time>.jsonl, each run's
# per-second readings to target/footprint/<time>/, with /proc/self/smaps at the end of the
# workload. Needs python3 for the table.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
RUNS=${RUNS:-1}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-240}
WIDEN=${WIDEN:-60}
STEADY=${STEADY:-60}
HZ=${HZ:-100}
UPLOAD_RATE=${UPLOAD_RATE:-5}
LEVELS=${LEVELS:-true line-tables-only false}
PYROSCOPE_RS=${PYROSCOPE_RS:-auto}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out_dir=target/footprint
runs_dir=$out_dir/$stamp
mkdir -p "$runs_dir"
results="$out_dir/results-$stamp.jsonl"

bins=()
for level in $LEVELS; do
    echo "building examples/footprint (release, debug = $level) …" >&2
    CARGO_TARGET_DIR=$out_dir/debug-$level CARGO_PROFILE_RELEASE_DEBUG=$level \
        cargo build --release --locked --quiet --example footprint
    bins+=("caddyprof debug=$level=$out_dir/debug-$level/release/examples/footprint")
done
if [[ $PYROSCOPE_RS != 0 ]]; then
    echo "building benches/pyroscope-rs (release, debug = true; the first build takes minutes) …" >&2
    if (cd benches/pyroscope-rs &&
        CARGO_TARGET_DIR=$root/$out_dir/pyroscope-rs CARGO_PROFILE_RELEASE_DEBUG=true \
            cargo build --release --locked --quiet --bin footprint); then
        bins+=("pyroscope-rs debug=true=$out_dir/pyroscope-rs/release/footprint")
    elif [[ $PYROSCOPE_RS == 1 ]]; then
        echo "benches/pyroscope-rs does not build" >&2
        exit 1
    else
        echo "benches/pyroscope-rs does not build: caddyprof only" >&2
    fi
fi

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB; kernel $(uname -r); $(ldd --version | head -1); $(rustc --version)"
    echo "workload: $SECONDS_PER_RUN s, widening over $WIDEN s, steady state = last $STEADY s; $HZ Hz, upload every ${UPLOAD_RATE}s; $RUNS run(s) each"
    for entry in "${bins[@]}"; do
        bin=${entry##*=}
        debug=$(size -A -d "$bin" | awk '$1 ~ /^\.debug_/ {s += $2} END {printf "%.1f", s / 1048576}')
        echo "binary ${entry%=*}: $(du -m --apparent-size "$bin" | cut -f1) MiB, of which .debug_* $debug MiB"
    done
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$runs_dir/about.txt" >&2

for ((i = 1; i <= RUNS; i++)); do
    for entry in "${bins[@]}"; do
        variant=${entry%=*}
        bin=${entry##*=}
        for mode in baseline profiled; do
            name="$runs_dir/${variant// /-}-$mode-$i"
            line=$("$bin" "--$mode" --variant "$variant" --seconds "$SECONDS_PER_RUN" \
                --widen "$WIDEN" --steady "$STEADY" --hz "$HZ" --upload-rate "$UPLOAD_RATE" \
                --timeline "$name.tsv" --smaps "$name.smaps")
            echo "$line" >>"$results"
            echo "run $i $variant $mode: $line" >&2
        done
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$runs_dir/about.txt" >&2
echo "results in $results, readings in $runs_dir" >&2

# Per build, baseline run i is paired with profiled run i (they ran back to back).
python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def stat(xs, n=1):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.{n}f}"
    return f"{statistics.median(xs):.{n}f} ({min(xs):.{n}f}..{max(xs):.{n}f})"
print("| profiler, debug info | added peak RSS MiB | anon / file MiB at peak | added steady RSS MiB | anon / file MiB steady | profiled peak MiB | baseline peak MiB | growth after widening MiB | steady slope MiB/min | CPU samples | functions seen | stop s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
variants = []
for r in rows:
    if r["variant"] not in variants:
        variants.append(r["variant"])
for v in variants:
    b = [r for r in rows if r["variant"] == v and r["mode"] == "baseline"]
    f = [r for r in rows if r["variant"] == v and r["mode"] == "profiled"]
    pairs = list(zip(b, f))
    d = lambda key: [y[key] - x[key] for x, y in pairs]
    print(f"| {v.replace('debug=', '')} | {stat(d('peak_mib'))} "
          f"| +{stat(d('peak_anon_mib'))} / +{stat(d('peak_file_mib'))} "
          f"| {stat(d('steady_mib'))} "
          f"| +{stat(d('steady_anon_mib'))} / +{stat(d('steady_file_mib'))} "
          f"| {stat([r['peak_mib'] for r in f])} | {stat([r['peak_mib'] for r in b])} "
          f"| {stat([r['growth_after_widen_mib'] for r in f], 2)} "
          f"| {stat([r['steady_slope_mib_per_min'] for r in f], 2)} "
          f"| {stat([r['cpu_samples'] for r in f], 0)} | {stat([r['functions_seen'] for r in f], 0)} "
          f"| {stat([r['stop_s'] for r in f], 3)} |")
EOF
