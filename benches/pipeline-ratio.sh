#!/usr/bin/env bash
# Consumer fps as a ratio of the producer's solo render rate (issue 5's figure): alternates
# the producer alone and the producer with `consumer stats` beside it, pinned apart.
# Usage: bash benches/pipeline-ratio.sh [ROUNDS] [FRAMES]   (after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-4}; FRAMES=${2:-8000}
P=target/release/producer; C=target/release/consumer
log=$(mktemp -d); trap 'rm -rf "$log"' EXIT
# The producer's rate from its "ready" and "stopped" log lines (RFC 3339 timestamps).
rate() {
    local a b
    a=$(date -d "$(grep ready "$1" | awk '{print $1}')" +%s.%N)
    b=$(date -d "$(grep stopped "$1" | awk '{print $1}')" +%s.%N)
    awk -v f="$FRAMES" -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", f / (b - a) }'
}
for r in $(seq "$ROUNDS"); do
    S=ratio$$x$r
    taskset -c 0 $P --stream $S --size 1920x1080 --fps 0 --frames "$FRAMES" 2>"$log/solo"
    solo=$(rate "$log/solo")
    taskset -c 0 $P --stream $S --size 1920x1080 --fps 0 --frames "$FRAMES" 2>"$log/pair" &
    pid=$!
    taskset -c 1 $C stats --stream $S --json 2>/dev/null >"$log/stats"
    wait $pid
    pair=$(rate "$log/pair")
    fps=$(grep -o '"fps":[0-9.]*' "$log/stats" | cut -d: -f2)
    skipped=$(grep -o '"skipped":[0-9]*' "$log/stats" | cut -d: -f2)
    awk -v r="$r" -v s="$solo" -v p="$pair" -v c="$fps" -v k="$skipped" 'BEGIN {
        printf "round %d: producer alone %d fps, with consumer %d fps, consumer %.0f fps (skipped %d), consumer/alone %.3f\n", r, s, p, c, k, c / s }'
done
