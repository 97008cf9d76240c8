#!/bin/sh
# Runs the benchmarks of BENCHMARKS.md for two revisions on this machine, alternating, so that a
# change is judged against the code before it rather than against figures from another machine.
#
#   scripts/bench-compare.sh OLD_REVISION [BENCH ...]       (as root: fdb and ovs make namespaces)
#
# BENCH is any of codec ingest reflector attach fdb ovs (default: all). The old revision is built in
# a worktree under .build-compare/ (release); the working tree is built in .build/release. Each
# benchmark runs twice per revision (old, new, old, new), measuring ours only; the anchors (GoBGP,
# FRR, the original) run in the benchmark's own command, once, without this script.
set -eu
[ $# -ge 1 ] || { sed -n 2,9p "$0"; exit 2; }
old=$1
shift
benches=${*:-codec ingest reflector attach fdb ovs}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${BAGPIPE_SHARED:-$root/../shared}
tree=$root/.build-compare/$(git -C "$root" rev-parse --short "$old")

if [ ! -d "$tree" ]; then
    git -C "$root" worktree add -f --detach "$tree" "$old" >/dev/null
fi
for dir in "$tree" "$root"; do
    (cd "$dir" && swift build -c release --product bagpipe-bgp >/dev/null && swift build -c release --product bagpipe-bench >/dev/null)
done

run() { # dir bench
    bin=$1/.build/release/bagpipe-bench
    case $2 in
    codec) (cd "$1" && "$bin" codec --seconds 3 --no-gobgp --bench "$shared/bench") ;;
    ingest) (cd "$1" && "$bin" ingest --receivers ours) ;;
    reflector) (cd "$1" && "$bin" reflector --reflectors ours) ;;
    attach) (cd "$1" && "$bin" attach --daemons ours) ;;
    fdb) (cd "$1" && "$bin" fdb) ;;
    ovs) (cd "$1" && "$bin" ovs) ;;
    *) echo "unknown benchmark $2" >&2; exit 2 ;;
    esac
}

for bench in $benches; do
    for round in 1 2; do
        echo "== $bench, round $round, before ($old)"
        run "$tree" "$bench"
        echo "== $bench, round $round, after (working tree)"
        run "$root" "$bench"
    done
done
