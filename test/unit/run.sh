#!/usr/bin/env bash
# test/unit/run.sh - build and run the C unit tests of the state engine.
#
# Usage: test/unit/run.sh
#
# Builds test/unit/test_engine.c with the engine sources (src/json_doc.c,
# src/json_pointer.c, src/json_patch.c, src/effect.c, src/schema.c,
# src/event_doc.c, src/undo_patch.c) using gcc -std=c99 -Wall -Wextra -Werror,
# with AddressSanitizer and UndefinedBehaviorSanitizer when the compiler
# supports them, and runs it.  When the linker supports --wrap, malloc,
# calloc and realloc are wrapped (-DES_TEST_WRAP_ALLOC) so that the tests
# can make the engine's scratch allocations fail too, not only those of
# documents.
# The last line of output is always "N passed, N failed" (N = test cases);
# the exit status is 0 only if nothing failed.  Build products go to a
# temporary directory.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
SRCS=(src/json_doc.c src/json_pointer.c src/json_patch.c src/effect.c src/schema.c src/event_doc.c
	src/undo_patch.c)
CC=${CC:-gcc}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$REPO"

summary_fail() {
	echo "unit tests: $1"
	echo "0 passed, 1 failed"
	exit 1
}

if ! JANSSON=$(pkg-config --cflags --libs jansson 2>/dev/null); then
	summary_fail "jansson not found by pkg-config (apt-get install libjansson-dev)"
fi

CFLAGS=(-std=c99 -Wall -Wextra -Werror -Wdeclaration-after-statement
	-Wmissing-prototypes -Wpointer-arith -Werror=vla -Wimplicit-fallthrough=3
	-g -O1 -I src)

SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
if echo 'int main(void){return 0;}' | $CC -x c "${SAN[@]}" -o "$WORK/probe" - 2>/dev/null; then
	echo "building with ${SAN[*]}"
else
	SAN=()
	echo "building without sanitizers (not supported by $CC)"
fi

# failure injection for the engine's malloc, calloc and realloc (GNU ld)
WRAP=(-DES_TEST_WRAP_ALLOC -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc)
cat >"$WORK/wrap.c" <<'EOF'
#include <stdlib.h>
extern void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_malloc(size_t size) { return __real_malloc(size); }
int main(void) { free(malloc(1)); return 0; }
EOF
if $CC "${SAN[@]}" "$WORK/wrap.c" -Wl,--wrap=malloc -o "$WORK/wrap" 2>/dev/null &&
	"$WORK/wrap"; then
	echo "with failure injection for malloc, calloc and realloc (--wrap)"
else
	WRAP=()
	echo "without failure injection for malloc (the linker has no --wrap)"
fi

# shellcheck disable=SC2086
if ! $CC "${CFLAGS[@]}" "${SAN[@]}" -I test/unit "${WRAP[@]}" "${SRCS[@]}" test/unit/test_engine.c \
	$JANSSON -o "$WORK/test_engine" 2>"$WORK/build.log"; then
	cat "$WORK/build.log"
	summary_fail "build failed"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$WORK/test_engine" >"$WORK/out.log" 2>&1
rc=$?
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/out.log" | tail -n 1)
grep -vE '^[0-9]+ passed, [0-9]+ failed$' "$WORK/out.log"
if [ -z "$line" ]; then
	summary_fail "the test program died (exit status $rc)"
fi
passed=${line%% passed*}
failed=${line#*, }
failed=${failed%% failed*}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	# all cases passed but the sanitizers found something (e.g. a leak)
	echo "unit tests: exit status $rc after all cases passed (sanitizer report above)"
	failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
