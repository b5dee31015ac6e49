#!/usr/bin/env bash
# Paired timing of `caddyprof adapt`'s work (adapt_source_to_text) between this checkout and
# another revision, both in one process, alternating round by round (benches/adapt-ab/probe.rs).
#
#   benches/adapt_ab.sh REV [BYTES] [ROUNDS]     e.g. benches/adapt_ab.sh HEAD~3 1048576 200
#
# Prints min, p10 and median times and MB/s for each, and the distribution of the per-round
# time ratio new/base, which a drifting machine (a shared VM) does not skew. The first run
# builds both versions (a few minutes); REV needs the same AdaptOptions/adapt_source_to_text API.
set -euo pipefail

rev=${1:?usage: benches/adapt_ab.sh REV [BYTES] [ROUNDS]}
bytes=${2:-1048576}
rounds=${3:-200}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=${ADAPT_AB_DIR:-${TMPDIR:-/tmp}/caddyprof-adapt-ab}
base="$work/base"

mkdir -p "$work"
if [ -e "$base" ]; then
	git -C "$root" worktree remove --force "$base" 2>/dev/null || rm -rf "$base"
fi
git -C "$root" worktree prune
git -C "$root" worktree add --detach --quiet "$base" "$rev"
# The checkout goes when done; the build directory stays, for a quicker next run.
trap 'git -C "$root" worktree remove --force "$base"' EXIT
# One build may hold two versions of a package only if their versions differ.
sed -i '0,/^version = /s/^version = .*/version = "0.0.0-base"/' "$base/Cargo.toml"

mkdir -p "$work/probe"
cat >"$work/probe/Cargo.toml" <<TOML
[package]
name = "adapt-ab"
version = "0.0.0"
edition = "2024"
publish = false

[[bin]]
name = "adapt-ab"
path = "$root/benches/adapt-ab/probe.rs"

[dependencies]
new = { package = "caddyprof", path = "$root" }
base = { package = "caddyprof", path = "$base" }

[workspace]
TOML
cargo build --quiet --release --manifest-path "$work/probe/Cargo.toml" --target-dir "$work/target"
"$work/target/release/adapt-ab" "$bytes" "$rounds"
