#!/usr/bin/env bash
# test/fuzz/run.sh - build and run the libFuzzer target of the state engine.
#
# Usage: test/fuzz/run.sh [seconds]      (default 60)
#
# Builds test/fuzz/fuzz_effect.c with the engine sources using
# clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# and runs it for the given time (-max_total_time), starting from the seeds
# in test/fuzz/corpus/ (never modified: new inputs go to a work corpus) with
# the dictionary test/fuzz/effect.dict.  Needs clang and libclang-rt-14-dev
# (apt-get install clang libclang-rt-14-dev libjansson-dev).
#
# Environment: ES_FUZZ_DIR (work directory, default /tmp/es_fuzz; its
# corpus/ grows from run to run, crash-* files land in it), ES_FUZZ_JOBS
# (parallel jobs, default 1).
#
# The last line is a one-line summary; the exit status is 0 only if no crash
# was found.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
SECONDS_TO_RUN=${1:-60}
WORK=${ES_FUZZ_DIR:-/tmp/es_fuzz}
JOBS=${ES_FUZZ_JOBS:-1}
SRCS=(src/json_doc.c src/json_pointer.c src/json_patch.c src/effect.c src/schema.c src/event_doc.c)
cd "$REPO"
mkdir -p "$WORK/corpus"

if ! command -v clang >/dev/null; then
	echo "fuzz_effect: clang not found (apt-get install clang libclang-rt-14-dev)"
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
crashes=$(find "$WORK" -maxdepth 1 -name 'crash-*' -newer "$WORK/fuzz_effect" | wc -l)
if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
	cat "$WORK/fuzz.log" "$WORK"/fuzz-*.log 2>/dev/null |
		grep -E 'ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x' | head -40
	echo "fuzz_effect: FAILED after $runs runs in ${SECONDS_TO_RUN}s (exit $rc, $crashes crash file(s) in $WORK)"
	exit 1
fi
echo "fuzz_effect: $runs runs in ${SECONDS_TO_RUN}s, corpus $(ls "$WORK/corpus" | wc -l) inputs, no crash"
