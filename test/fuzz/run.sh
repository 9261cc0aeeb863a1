#!/usr/bin/env bash
# test/fuzz/run.sh - build and run the libFuzzer target of the state engine.
#
# Usage: test/fuzz/run.sh [seconds]      (default $ES_FUZZ_SECONDS, or 60)
#
# Builds test/fuzz/fuzz_effect.c with the engine sources using
# clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# and runs it for the given time (-max_total_time; with several jobs they
# run side by side), starting from the seeds in test/fuzz/corpus/ (never
# modified: new inputs go to a work corpus) with the dictionary
# test/fuzz/effect.dict.  A crash, a leak, undefined behaviour, a broken
# invariant of the target (an abort) or a slow input (-timeout) fails the
# run.  Needs clang and libFuzzer with the sanitizer runtimes, which
# test/deps.sh installs (Debian 12: clang libclang-rt-14-dev).  A missing
# tool is a failure, never a skip.
#
# Environment: ES_FUZZ_SECONDS (the default time), ES_FUZZ_DIR (work
# directory, default /tmp/es_fuzz; its corpus/ grows from run to run;
# crash-*, leak-*, timeout-* and oom-* files land in it), ES_FUZZ_JOBS
# (parallel jobs, default 1).
#
# The last line is a one-line summary; the exit status is 0 only if nothing
# was found.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
SECONDS_TO_RUN=${1:-${ES_FUZZ_SECONDS:-60}}
WORK=${ES_FUZZ_DIR:-/tmp/es_fuzz}
JOBS=${ES_FUZZ_JOBS:-1}
SRCS=(src/json_doc.c src/json_pointer.c src/json_patch.c src/effect.c src/schema.c src/event_doc.c
	src/undo_patch.c)
cd "$REPO" || exit 1
mkdir -p "$WORK/corpus"

if ! [[ "$SECONDS_TO_RUN" =~ ^[1-9][0-9]*$ ]]; then
	echo "fuzz_effect: the time must be a positive number of seconds, not \"$SECONDS_TO_RUN\""
	exit 1
fi
if ! command -v clang >/dev/null; then
	echo "fuzz_effect: clang not found (test/deps.sh installs it: clang libclang-rt-14-dev)"
	exit 1
fi
if ! pkg-config --exists jansson; then
	echo "fuzz_effect: jansson not found by pkg-config (apt-get install libjansson-dev)"
	exit 1
fi
rt=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
if [ "$(uname -m)" = x86_64 ] && [ ! -f "$rt" ]; then
	echo "fuzz_effect: libFuzzer not found (libclang_rt.fuzzer-x86_64.a; test/deps.sh installs libclang-rt-14-dev)"
	exit 1
fi
# shellcheck disable=SC2046
if ! clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer -I src \
	"${SRCS[@]}" test/fuzz/fuzz_effect.c $(pkg-config --cflags --libs jansson) \
	-o "$WORK/fuzz_effect" 2>"$WORK/build.log"; then
	cat "$WORK/build.log"
	echo "fuzz_effect: build failed"
	exit 1
fi

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
rm -f "$WORK"/fuzz-*.log
# from $WORK: with -jobs, libFuzzer writes fuzz-N.log in the current directory
(cd "$WORK" && ./fuzz_effect -max_total_time="$SECONDS_TO_RUN" -timeout=10 \
	-rss_limit_mb=2048 -max_len=8192 -dict="$REPO/test/fuzz/effect.dict" \
	-artifact_prefix="$WORK/" -print_final_stats=1 \
	-jobs="$JOBS" -workers="$JOBS" \
	"$WORK/corpus" "$REPO/test/fuzz/corpus") >"$WORK/fuzz.log" 2>&1 || rc=$?
# with -jobs, the statistics are in the workers' fuzz-N.log
logs=("$WORK/fuzz.log")
if [ "$JOBS" -gt 1 ]; then
	logs=("$WORK"/fuzz-*.log)
fi
runs=$(cat "${logs[@]}" | grep -E '^stat::number_of_executed_units' |
	awk '{s += $2} END {print s + 0}')
crashes=$(find "$WORK" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
	-o -name 'oom-*' \) -newer "$WORK/fuzz_effect" | wc -l)
if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
	cat "$WORK/fuzz.log" "$WORK"/fuzz-*.log 2>/dev/null |
		grep -E 'ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x' | head -40
	echo "fuzz_effect: FAILED after $runs runs in ${SECONDS_TO_RUN}s (exit $rc, $crashes crash file(s) in $WORK)"
	exit 1
fi
inputs=$(find "$WORK/corpus" -maxdepth 1 -type f | wc -l)
echo "fuzz_effect: $runs runs in ${SECONDS_TO_RUN}s, corpus $inputs inputs, no crash"
