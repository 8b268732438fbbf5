#!/usr/bin/env bash
# Run by hand (not in CI): frames/s and CPU per frame of three ways to move 1920x1080 BGRx
# frames from a cheap source (videotestsrc pattern=black) to fakesink, in one run:
#   framepipe   videotestsrc ! framepipesink   |  framepipesrc ! fakesink   (two processes;
#               upstream renders into the sink's slot pool, no copy on the sink side)
#   fp-copy     the same with framepipesink slot-pool=false (the sink copies each buffer)
#   fp-every    the same with framepipesrc every-frame=true
#   shm         videotestsrc ! shmsink         |  shmsrc ! fakesink         (two processes)
#   ceiling     videotestsrc ! fakesink                                     (one process)
# The two processes are pinned to different cores. frames/s is what the receiving side got
# (it stops after $FRAMES buffers); CPU per frame is user+sys of both processes divided by
# those frames. shmsink/shmsrc need gstreamer1.0-plugins-bad.
#
# usage: gst-framepipe/bench/transport.sh [FRAMES]   (after `cargo build --release` of
#        the plugin: cargo build --release --manifest-path gst-framepipe/Cargo.toml)
set -euo pipefail
cd "$(dirname "$0")/.."

frames="${1:-1000}"
export GST_PLUGIN_PATH="$PWD/target/release"
export GST_REGISTRY="$PWD/target/release/gst-registry-bench.bin"
test -e "$GST_PLUGIN_PATH/libgstframepipe.so" || {
    echo "build the plugin first: cargo build --release --manifest-path gst-framepipe/Cargo.toml" >&2
    exit 1
}
gst-inspect-1.0 shmsink >/dev/null 2>&1 || {
    echo "shmsink missing: apt-get install gstreamer1.0-plugins-bad" >&2
    exit 1
}

caps="video/x-raw,format=BGRx,width=1920,height=1080,framerate=0/1"
source="videotestsrc pattern=black num-buffers=1000000 ! $caps"
stream="bench$$"
socket="/tmp/framepipe-bench-$$.sock"
TIMEFORMAT='%R %U %S'

# measure NAME SENDER RECEIVER [PATH]: the sender runs on core 0 until the receiver (core
# 1) has taken $frames buffers; the receiver starts once PATH exists (shmsrc cannot wait
# for its socket; framepipesrc waits for its producer by itself).
measure() {
    local name=$1 sender=$2 receiver=$3 ready=${4:-} times
    times=$({ time (
        # shellcheck disable=SC2086
        taskset -c 0 gst-launch-1.0 -q $sender &
        sender_pid=$!
        if [[ -n $ready ]]; then
            until [[ -e $ready ]]; do sleep 0.01; done
        fi
        # shmsrc fails if it connects before shmsink listens: try again (a few times).
        # shellcheck disable=SC2086
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            taskset -c 1 gst-launch-1.0 -q $receiver >/dev/null 2>&1 && break
            sleep 0.05
        done
        kill -INT "$sender_pid" 2>/dev/null || true
        wait "$sender_pid" 2>/dev/null || true
    ); } 2>&1 | tail -n 1)
    report "$name" "$times"
}

report() {
    local name=$1 real user sys
    read -r real user sys <<<"$2"
    awk -v n="$name" -v f="$frames" -v r="$real" -v u="$user" -v s="$sys" 'BEGIN {
        printf "%-10s %6d frames in %6.2f s = %7.1f frames/s, CPU %6.2f ms/frame (user %.2f s, sys %.2f s)\n",
            n, f, r, f / r, (u + s) * 1000 / f, u, s }'
}

measure framepipe \
    "$source ! framepipesink stream=$stream wait-for-consumers=1 sync=false" \
    "framepipesrc stream=$stream num-buffers=$frames ! fakesink sync=false"

# The same without the slot pool: upstream renders into ordinary memory, the sink copies.
measure fp-copy \
    "$source ! framepipesink stream=${stream}c wait-for-consumers=1 sync=false slot-pool=false" \
    "framepipesrc stream=${stream}c num-buffers=$frames ! fakesink sync=false"

# Every frame: the sink waits for the source as shmsink waits for its area to free up, so
# the sender no longer renders and copies frames the receiver never takes.
measure fp-every \
    "$source ! framepipesink stream=${stream}e wait-for-consumers=1 sync=false" \
    "framepipesrc stream=${stream}e every-frame=true num-buffers=$frames ! fakesink sync=false"

measure shm \
    "$source ! shmsink socket-path=$socket shm-size=50000000 wait-for-connection=true sync=false" \
    "shmsrc socket-path=$socket is-live=true num-buffers=$frames ! $caps ! fakesink sync=false" \
    "$socket"

times=$({ time taskset -c 0 gst-launch-1.0 -q videotestsrc pattern=black num-buffers="$frames" \
    ! "$caps" ! fakesink sync=false; } 2>&1 | tail -n 1)
report ceiling "$times"
rm -f "$socket"
