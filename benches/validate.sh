#!/usr/bin/env bash
# Time and peak memory of `caddyprof adapt`, `caddyprof adapt --validate` and `caddyprof
# validate` on generated Profilingfiles (benches/adapt-ab/input.rs, through the
# big_profilingfile example) of 1, 10 and 50 MB, or of the sizes given in MB:
#
#   benches/validate.sh [MB...]          ROUNDS=5 benches/validate.sh 50
#
# Each command runs ROUNDS times (3 by default); the fastest round is kept: its wall time, its
# CPU time (user + system: what a busy machine changes least) and its peak resident memory
# (GNU time's maximum RSS). The last two columns compare with `adapt` on the same file.
# Prints a Markdown table. Needs GNU time (/usr/bin/time).
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
rounds=${ROUNDS:-3}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 10 50)

cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" \
	--bin caddyprof --example big_profilingfile
bin="$root/target/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "| input | command | time (s) | CPU (s) | peak memory (MB) | time ÷ adapt | memory ÷ adapt |"
echo "|---|---|---|---|---|---|---|"
for mb in "${sizes[@]}"; do
	"$bin/examples/big_profilingfile" $((mb * 1048576)) >"$work/Profilingfile"
	for command in "adapt" "adapt --validate" "validate"; do
		best=""
		for _ in $(seq "$rounds"); do
			# shellcheck disable=SC2086 # the command's words
			/usr/bin/time -o "$work/time" -f '%e %U %S %M' \
				"$bin/caddyprof" $command "$work/Profilingfile" >/dev/null 2>"$work/stderr"
			read -r wall user system rss <"$work/time"
			if [ -z "$best" ] || awk -v a="$wall" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then
				best="$wall $(awk -v u="$user" -v s="$system" 'BEGIN { print u + s }') $((rss / 1024))"
			fi
		done
		read -r wall cpu mb_rss <<<"$best"
		[ "$command" = adapt ] && base_wall=$wall base_rss=$mb_rss
		awk -v mb="$mb" -v c="$command" -v w="$wall" -v cpu="$cpu" -v m="$mb_rss" \
			-v bw="$base_wall" -v bm="$base_rss" \
			'BEGIN { printf "| %d MB | `%s` | %.2f | %.2f | %d | %.1f | %.1f |\n", mb, c, w, cpu, m, w / bw, m / bm }'
	done
done
