#!/usr/bin/env bash
# The allocation overhead benchmark: one allocation-heavy workload (several threads, small,
# medium and large blocks, reallocations; examples/alloc_overhead/workload.rs) run with
# System as the global allocator (baseline), with caddyprof::allocator::Sampled<System>
# taking heap profiles at the default rate (sampled), and with the wrapper installed but no
# profile asked for (wrapper-idle). Each run is its own process; the three alternate, RUNS
# times, and the table gives medians (min..max) of each run's CPU time and wall time over
# the baseline run just before it, and the time the sampler itself measured taking samples
# (allocator::Stats::sampling_nanos; less sensitive to a busy machine than CPU A/B).
#
#   benches/alloc_overhead.sh                    # 7 runs of each, 4 threads
#   RUNS=3 ROUNDS=5000 THREADS=2 benches/alloc_overhead.sh
#   COMPUTE=4000 ROUNDS=20000 benches/alloc_overhead.sh   # work between allocations
#
# Environment: RUNS (7), ROUNDS (per thread, 200000), THREADS (4), COMPUTE (loop iterations
# of work per round, 0). Raw JSON lines are kept in
# target/alloc_overhead/results-<time>.jsonl. Needs python3 for the table.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
ROUNDS=${ROUNDS:-200000}
THREADS=${THREADS:-4}
COMPUTE=${COMPUTE:-0}

out_dir=target/alloc_overhead
mkdir -p "$out_dir"
results="$out_dir/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"

echo "building (release) …" >&2
cargo build --release --quiet --example alloc_overhead_system --example alloc_overhead_sampled
system=target/release/examples/alloc_overhead_system
sampled=target/release/examples/alloc_overhead_sampled
args=(--rounds "$ROUNDS" --threads "$THREADS" --compute "$COMPUTE")

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((i = 1; i <= RUNS; i++)); do
    for run in "$system" "$sampled --active" "$sampled"; do
        line=$($run "${args[@]}")
        echo "$line" >>"$results"
        echo "run $i: $line" >&2
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $load_before, after: $load_after; $(nproc) CPUs; results in $results" >&2

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def stat(xs, n=2):
    return f"{round(statistics.median(xs), n)} ({round(min(xs), n)}..{round(max(xs), n)})"
base = [r for r in rows if r["allocator"] == "system"]
gb = [r["bytes"] / r["cpu_s"] / 1e9 for r in base]
print(f"workload: {base[0]['threads']} threads, {base[0]['allocations']} allocations, {base[0]['bytes'] / 1e9:.1f} GB; "
      f"{stat(gb, 1)} GB allocated per CPU second (baseline)\n")
print("| allocator | CPU s | CPU overhead % | CPU overhead % without the collector thread | wall overhead % | samples | µs per sample | time taking samples, % of baseline CPU |")
print("|---|---|---|---|---|---|---|---|")
print(f"| system | {stat([r['cpu_s'] for r in base])} | – | – | – | – | – | – |")
for name in ["sampled", "wrapper-idle"]:
    runs = [r for r in rows if r["allocator"] == name]
    pairs = list(zip(base, runs))
    cpu = [(r["cpu_s"] / b["cpu_s"] - 1) * 100 for b, r in pairs]
    alloc_path = [((r["cpu_s"] - r.get("collector_cpu_s", 0)) / b["cpu_s"] - 1) * 100 for b, r in pairs]
    wall = [(r["wall_s"] / b["wall_s"] - 1) * 100 for b, r in pairs]
    samples = [r["samples"] for r in runs]
    per = [r["sampling_s"] / r["samples"] * 1e6 for r in runs if r["samples"]]
    share = [r["sampling_s"] / b["cpu_s"] * 100 for b, r in pairs if r["samples"]]
    print(f"| {name} | {stat([r['cpu_s'] for r in runs])} | {stat(cpu)} | {stat(alloc_path)} | {stat(wall)} "
          f"| {stat(samples, 0)} | {stat(per, 2) if per else '–'} | {stat(share, 2) if share else '–'} |")
PY
