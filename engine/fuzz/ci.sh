#!/bin/sh
# Short fuzzing run for CI: builds the `frame` target with nightly + cargo-fuzz and runs it for
# $1 seconds (default 60) from the seed corpus. Fails on any crash, panic or leak.
set -eu
cd "$(dirname "$0")"
secs="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
mkdir -p corpus/frame
exec cargo +nightly fuzz run frame corpus/frame seeds/frame -- -max_total_time="$secs"
