#!/usr/bin/env bash
# test/run.sh - build eventsourcing and run the whole test suite.
#
# Usage: test/run.sh            (from any directory; CI runs it via .ci/run)
#
# Steps: test/deps.sh; make clean; make; make install; a fresh private cluster
# in $REPO/.test-cluster on port ${ES_TEST_PORT:-25430}; then these test
# cases, each counted:
#   cppcheck            "make cppcheck"                           (1 case)
#   regress/NAME        pg_regress tests of "make installcheck"   (1 per test)
#   isolation/NAME      isolation specs of "make installcheck"    (1 per spec)
#   tap/NAME            TAP tests, if the Makefile declares them  (1 per file)
#   shell/NAME          each executable test/shell/*.sh           (1 per file)
#   unit                test/unit/run.sh, if present; it prints its own
#                       "N passed, N failed" line, whose numbers are added
#   relay, relay-load,  test/relay/run.sh (the WebSocket relay against a
#   browser             preloaded cluster), test/relay/run.sh load (50
#                       clients on 10 playbooks, both notify modes) and
#                       test/browser/run.sh (two headless chromium pages on
#                       the relay), if present (1 case each; pass on exit
#                       status 0)
#   fuzz                test/fuzz/run.sh: the libFuzzer target of the state
#                       engine under ASan+UBSan for ${ES_FUZZ_SECONDS:-60} s
#                       (1 case; passes if it finds no crash, leak, undefined
#                       behaviour, broken invariant or time-out; a missing
#                       clang or libFuzzer fails it, test/deps.sh installs them)
#
# A shell test runs from the repo root with PGHOST, PGPORT, PGUSER=postgres,
# ES_REPO, ES_CLUSTER_DIR and ES_CLUSTER (a command: "$ES_CLUSTER
# stop-immediate", "$ES_CLUSTER start"), under "timeout ${ES_SHELL_TIMEOUT:-900}";
# it passes if it exits 0.  Its output goes to $REPO/.test-cluster-logs/NAME.log.
#
# The cluster is stopped at the end, whatever happens; its log stays in
# .test-cluster/log/postgresql.log until the next run.  The last line of
# output is always "N passed, N failed"; the exit status is 0 only if nothing
# failed and something passed.
#
# Environment: ES_TEST_PORT (25430), ES_SHELL_TIMEOUT (900 s),
# ES_DIFF_LINES (lines of each regression.diffs to print, 400),
# ES_FUZZ_SECONDS (60: how long the fuzz case runs), ES_FUZZ_DIR (its work
# directory, /tmp/es_fuzz; the corpus there grows from run to run),
# ES_SKIP_DEPS=1 (see test/deps.sh).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PG_BIN=/usr/lib/postgresql/15/bin
export PATH="$PG_BIN:$PATH"
cd "$REPO"

# below Linux's ephemeral range (32768-60999), so that no client socket
# of a busy machine holds it
PORT=${ES_TEST_PORT:-25430}
CLUSTER_DIR="$REPO/.test-cluster"
LOG_DIR="$REPO/.test-cluster-logs"
CLUSTER=("$REPO/test/cluster.sh" "$CLUSTER_DIR" "$PORT")
SHELL_TIMEOUT=${ES_SHELL_TIMEOUT:-900}
DIFF_LINES=${ES_DIFF_LINES:-400}
FUZZ_SECONDS=${ES_FUZZ_SECONDS:-60}

PASSED=0
FAILED=0
RESULTS=()
SUMMARY_DONE=false
CLUSTER_STARTED=false
CHILD=""

# ---- bookkeeping -----------------------------------------------------------

section() { printf '\n==== %s ====\n' "$*"; }

# pass NAME / fail NAME [REASON]: record one test case.
pass() {
	PASSED=$((PASSED + 1))
	RESULTS+=("PASS  $1")
}
fail() {
	FAILED=$((FAILED + 1))
	RESULTS+=("FAIL  $1${2:+  ($2)}")
}

# show_file FILE LINES: print FILE, at most LINES lines.
show_file() {
	local file=$1 max=$2 n
	[ -s "$file" ] || return 0
	n=$(wc -l <"$file")
	echo "---- $file ----"
	head -n "$max" "$file"
	if [ "$n" -gt "$max" ]; then
		echo "---- ($((n - max)) more lines in $file) ----"
	fi
}

# show_tail FILE LINES: print the last LINES lines of FILE.
show_tail() {
	local file=$1 max=$2
	[ -s "$file" ] || return 0
	echo "---- last $max lines of $file ----"
	tail -n "$max" "$file"
	echo "----"
}

# stop_cluster: stop the test cluster; output goes to the cluster log.
stop_cluster() {
	if $CLUSTER_STARTED; then
		"${CLUSTER[@]}" stop >>"$LOG_DIR/cluster.log" 2>&1 || true
	fi
}

# crash_report: point out server crashes, whatever the tests said.
crash_report() {
	local log="$CLUSTER_DIR/log/postgresql.log"
	[ -f "$log" ] || return 0
	if grep -qE 'terminated by signal|PANIC|TRAP:' "$log"; then
		section "server crashes in $log"
		grep -E 'terminated by signal|PANIC|TRAP:' "$log" | head -n 20
	fi
}

# finish: stop the cluster, print the summary and exit.  The last line
# printed is "N passed, N failed".
finish() {
	local line
	stop_cluster
	crash_report
	section "summary"
	for line in "${RESULTS[@]}"; do
		echo "$line"
	done
	if [ "$FAILED" -gt 0 ] && $CLUSTER_STARTED; then
		echo "server log: $CLUSTER_DIR/log/postgresql.log"
		echo "test logs:  $LOG_DIR/"
	fi
	SUMMARY_DONE=true
	echo "$PASSED passed, $FAILED failed"
	if [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]; then
		exit 0
	fi
	exit 1
}

# shellcheck disable=SC2317  # (invoked by the EXIT trap)
# on_exit: an unexpected exit (error, signal) still kills a running test,
# stops the cluster and ends with the summary line.
on_exit() {
	local rc=$?
	set +e
	if [ -n "$CHILD" ]; then
		# timeout(1) passes the signal on to the whole test process group
		kill -TERM "$CHILD" 2>/dev/null
		wait "$CHILD" 2>/dev/null
		CHILD=""
	fi
	if ! $SUMMARY_DONE; then
		fail "run.sh" "aborted with exit status $rc"
		finish
	fi
	stop_cluster
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log

# ---- dependencies, build, install, cluster -----------------------------------
# These are not test cases; a failure here is counted as one and ends the run.

section "dependencies (test/deps.sh)"
if ! "$REPO/test/deps.sh"; then
	fail "deps" "test/deps.sh failed"
	finish
fi

section "build (make clean; make)"
make clean >/dev/null 2>&1 || true
if ! make -j"$(nproc 2>/dev/null || echo 2)"; then
	fail "build" "make failed"
	finish
fi

section "install (make install)"
if ! make install >"$LOG_DIR/install.log" 2>&1; then
	show_tail "$LOG_DIR/install.log" 40
	fail "install" "make install failed"
	finish
fi
echo "installed into $(pg_config --sharedir)/extension and $(pg_config --pkglibdir)"

section "cluster ($CLUSTER_DIR, port $PORT)"
CLUSTER_STARTED=true
"${CLUSTER[@]}" destroy
if ! "${CLUSTER[@]}" start; then
	fail "cluster" "test/cluster.sh start failed"
	finish
fi

# libpq settings for everything below; nothing inherited may redirect it
unset PGDATABASE PGSERVICE PGHOSTADDR
export PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres
export ES_REPO="$REPO" ES_CLUSTER_DIR="$CLUSTER_DIR"
export ES_CLUSTER="$REPO/test/cluster.sh $CLUSTER_DIR $PORT"

# run_timed LOG CMD...: run CMD under timeout(1), output to LOG.  It runs in
# the background and is waited for, so that a signal to this script is
# handled at once (timeout(1) puts CMD in its own process group, out of reach
# of the terminal's Ctrl-C); on_exit then kills it.  The time limit is
# $RUN_TIMEOUT if set, else $SHELL_TIMEOUT.
run_timed() {
	local log=$1 rc=0
	shift
	timeout -k 30 "${RUN_TIMEOUT:-$SHELL_TIMEOUT}" "$@" >"$log" 2>&1 </dev/null &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=""
	return "$rc"
}

# ensure_cluster: a test may have stopped the server; start it again.
ensure_cluster() {
	if ! "${CLUSTER[@]}" status >/dev/null 2>&1; then
		echo "(the cluster is not running after the last test; starting it)"
		"${CLUSTER[@]}" start >>"$LOG_DIR/cluster.log" 2>&1 ||
			echo "(could not start the cluster: see $LOG_DIR/cluster.log)"
	fi
}

# ---- cppcheck --------------------------------------------------------------

section "cppcheck (make cppcheck)"
if make -s cppcheck; then
	pass "cppcheck"
else
	fail "cppcheck"
fi

# ---- make installcheck -----------------------------------------------------
# pg_regress, the isolation specs and TAP run as separate "make installcheck"
# calls (the other kinds switched off on the command line), so that a failure
# in one suite does not hide the results of the next.

# parse_pg_regress LOG: the per-test lines of a pg_regress or
# pg_isolation_regress run, as "STATUS<TAB>NAME".  Formats understood:
#   PG <= 15   "test foo    ... ok     12 ms"   (or "     foo ... ok" in a
#              parallel group; "FAILED", "failed (ignored)"; a line cut short
#              because pg_regress stopped, e.g. on a missing expected file,
#              is "no result")
#   PG >= 16   "ok 1   - foo   12 ms", "not ok 2   - foo" ("+" in groups)
parse_pg_regress() {
	awk '
		/^(test |     )[^ ]+ +\.\.\. ?/ {
			line = $0
			sub(/^(test |     ) */, "", line)
			name = line; sub(/ .*/, "", name)
			rest = line; sub(/^[^ ]+ +\.\.\. ?/, "", rest)
			if (rest ~ /^ok/) print "ok\t" name
			else if (rest ~ /^failed \(ignored\)/) print "failed (ignored)\t" name
			else if (rest ~ /^FAILED/) print "FAILED\t" name
			else print "no result: pg_regress stopped, see its output\t" name
			next
		}
		/^(not )?ok [0-9]+ +[-+] +[^ ]/ {
			ok = ($1 == "ok")
			line = $0; sub(/^(not )?ok [0-9]+ +[-+] +/, "", line)
			name = line; sub(/ .*/, "", name)
			print (ok ? "ok" : "FAILED") "\t" name
		}' "$1"
}

# parse_prove LOG: the per-file lines of prove ("t/001_x.pl .. ok"), as
# "STATUS<TAB>NAME".
parse_prove() {
	awk '
		/^[^ ]+\.pl \.+ / {
			name = $1; sub(/^.*\//, "", name)
			if ($0 ~ / ok$/ || $0 ~ /skipped:/) print "ok\t" name
			else print "failed\t" name
		}' "$1"
}

# declared_tests MAKEVARS...: the test names on the pg_regress command line
# that "make installcheck MAKEVARS" would run (empty with a --schedule).
declared_tests() {
	make -s -n installcheck "$@" 2>/dev/null | awk '
		/pg_(isolation_)?regress / {
			f = 0
			for (i = 1; i <= NF; i++) {
				if ($i ~ /\/pg_(isolation_)?regress$/) { f = 1; continue }
				if (f && $i !~ /^[-"\047]/ && $i !~ /[=;&|]/) print $i
			}
		}'
}

# run_installcheck SUITE MAKEVARS...: one "make installcheck" with the other
# suites switched off; counts its results (a declared test without a result
# counts as failed), prints the diffs on failure.
run_installcheck() {
	local suite=$1 log="$LOG_DIR/installcheck-$1.log" rc=0 status name
	local -a seen=() declared=()
	shift
	if ! make -s -n installcheck "$@" 2>/dev/null | grep -qE 'pg_regress|pg_isolation_regress|prove'; then
		echo "(no $suite tests declared in the Makefile)"
		return 0
	fi
	[ "$suite" = tap ] || mapfile -t declared < <(declared_tests "$@")
	make installcheck "$@" >"$log" 2>&1 || rc=$?
	cat "$log"

	while IFS=$'\t' read -r status name; do
		seen+=("$name")
		if [ "$status" = ok ]; then
			pass "$suite/$name"
		else
			fail "$suite/$name" "$status"
		fi
	done < <(if [ "$suite" = tap ]; then parse_prove "$log"; else parse_pg_regress "$log"; fi)

	for name in "${declared[@]}"; do
		if ! printf '%s\n' "${seen[@]}" | grep -qxF -- "$name"; then
			fail "$suite/$name" "not run: pg_regress stopped before it"
		fi
	done
	if [ "$rc" -ne 0 ] && ! printf '%s\n' "${RESULTS[@]}" | grep -q "^FAIL  $suite/"; then
		fail "$suite" "make installcheck exited with $rc"
	fi

	if [ "$rc" -ne 0 ]; then
		case "$suite" in
			regress) show_file "$REPO/regression.diffs" "$DIFF_LINES" ;;
			isolation) show_file "$REPO/output_iso/regression.diffs" "$DIFF_LINES" ;;
			tap)
				for f in "$REPO"/tmp_check/log/regress_log_*; do
					[ -f "$f" ] && show_tail "$f" 40
				done
				;;
		esac
	fi
	ensure_cluster
}

rm -f "$REPO/regression.diffs" "$REPO/output_iso/regression.diffs"
section "pg_regress (make installcheck)"
run_installcheck regress ISOLATION= TAP_TESTS=
section "isolation specs (make installcheck)"
run_installcheck isolation REGRESS= TAP_TESTS=
section "TAP (make installcheck)"
run_installcheck tap REGRESS= ISOLATION=

# ---- shell tests -----------------------------------------------------------

section "shell tests (test/shell/*.sh)"
mapfile -t shell_tests < <(find "$REPO/test/shell" -maxdepth 1 -name '*.sh' -type f 2>/dev/null | LC_ALL=C sort)
if [ ${#shell_tests[@]} -eq 0 ]; then
	echo "(none)"
fi
for t in "${shell_tests[@]}"; do
	name=$(basename "$t" .sh)
	if [ ! -x "$t" ]; then
		echo "shell/$name: not executable, not run (chmod +x it if it is a test)"
		continue
	fi
	log="$LOG_DIR/shell-$name.log"
	start=$(date +%s)
	rc=0
	run_timed "$log" "$t" || rc=$?
	secs=$(($(date +%s) - start))
	if [ "$rc" -eq 0 ]; then
		echo "shell/$name ... ok (${secs} s)"
		pass "shell/$name"
	else
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			reason="timed out after $SHELL_TIMEOUT s"
		else
			reason="exit status $rc"
		fi
		echo "shell/$name ... FAILED: $reason (${secs} s)"
		show_tail "$log" 60
		fail "shell/$name" "$reason"
	fi
	ensure_cluster
done

# ---- C unit tests ----------------------------------------------------------

if [ -f "$REPO/test/unit/run.sh" ]; then
	section "unit tests (test/unit/run.sh)"
	log="$LOG_DIR/unit.log"
	rc=0
	run_timed "$log" bash "$REPO/test/unit/run.sh" || rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
	if [ -z "$line" ]; then
		show_tail "$log" 60
		fail "unit" "no \"N passed, N failed\" line; exit status $rc"
	else
		up=${line%% passed*}
		uf=${line#*, }
		uf=${uf%% failed*}
		PASSED=$((PASSED + up))
		FAILED=$((FAILED + uf))
		if [ "$uf" -eq 0 ]; then
			RESULTS+=("PASS  unit ($up passed, $uf failed)")
		else
			RESULTS+=("FAIL  unit ($up passed, $uf failed)")
		fi
		echo "unit: $line (exit status $rc)"
		if [ "$uf" -gt 0 ] || [ "$rc" -ne 0 ]; then
			show_tail "$log" 60
		fi
		if [ "$rc" -ne 0 ] && [ "$uf" -eq 0 ]; then
			fail "unit" "test/unit/run.sh exited with $rc"
		fi
	fi
fi

# ---- relay and browser -----------------------------------------------------
# Each suite builds what it needs and runs its own private cluster (the
# library preloaded); one result per suite, PASS only with exit status 0.

for suite in relay relay-load browser; do
	dir=${suite%%-*}
	arg=
	[ "$suite" = relay-load ] && arg=load
	script="$REPO/test/$dir/run.sh"
	[ -f "$script" ] || continue
	section "$suite (test/$dir/run.sh $arg)"
	log="$LOG_DIR/$suite.log"
	rc=0
	start=$(date +%s)
	# shellcheck disable=SC2086  # $arg is empty or one word
	run_timed "$log" bash "$script" $arg || rc=$?
	secs=$(($(date +%s) - start))
	if [ "$rc" -eq 0 ]; then
		echo "$suite ... ok (${secs} s)"
		grep -E '^(PASS|FAIL):' "$log" | sed 's/^/    /' || true
		pass "$suite"
	else
		echo "$suite ... FAILED: exit status $rc (${secs} s)"
		show_tail "$log" 80
		fail "$suite" "exit status $rc"
	fi
done

# ---- fuzzing ---------------------------------------------------------------
# A bounded run of the libFuzzer target under ASan+UBSan; never skipped.

section "fuzz (test/fuzz/run.sh, $FUZZ_SECONDS s)"
log="$LOG_DIR/fuzz.log"
if ! [[ "$FUZZ_SECONDS" =~ ^[1-9][0-9]*$ ]]; then
	echo "ES_FUZZ_SECONDS must be a positive number of seconds, not \"$FUZZ_SECONDS\""
	fail "fuzz" "bad ES_FUZZ_SECONDS"
else
	rc=0
	start=$(date +%s)
	# the build and the loading of the corpus come on top of the fuzzing time
	RUN_TIMEOUT=$((FUZZ_SECONDS + 600)) run_timed "$log" \
		bash "$REPO/test/fuzz/run.sh" "$FUZZ_SECONDS" || rc=$?
	secs=$(($(date +%s) - start))
	last=$(tail -n 1 "$log" 2>/dev/null || true)
	if [ "$rc" -eq 0 ]; then
		echo "$last (${secs} s)"
		pass "fuzz"
	else
		show_tail "$log" 60
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			fail "fuzz" "timed out after $((FUZZ_SECONDS + 600)) s"
		else
			fail "fuzz" "${last:-exit status $rc}"
		fi
	fi
fi

finish
