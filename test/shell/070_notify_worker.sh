#!/usr/bin/env bash
# test/shell/070_notify_worker.sh - eventsourcing.notify = worker (1.3), and
# commit mode as its control.
#
# The suite runs its own cluster (test/cluster.sh, port NOTIFY_WORKER_PORT,
# default 25481, under a temporary directory) with
# shared_preload_libraries = 'eventsourcing' and max_prepared_transactions,
# database es_nw.  Notifications are received by test/shell/notify_listen.c
# (compiled here with libpq): a raw listener that records every payload, and
# subscribers that follow the README's contract (LISTEN, catch up with
# es_sync from the last sequence applied, apply live notifications in
# sequence order, dropping those already applied; reconnect after a lost
# connection).  What the listeners received is loaded into tables of es_nw
# and compared with es.events.
#
#  1. delivery, worker and commit mode: autocommit appends, a rolled-back
#     transaction, rolled-back and released (nested) savepoints, a failed
#     PL/pgSQL block, a transaction aborted by an error, es_append_batch, a
#     plain INSERT, and (worker mode) PREPARE TRANSACTION with COMMIT /
#     ROLLBACK PREPARED:
#     every committed event is received once, no other; payloads have the
#     members of the event message and equal es_sync's message of the event
#     and the row of es.events; channel es_<category>.
#  6. payloads: an event whose message would exceed NOTIFY's limit arrives
#     without "data", with "truncated": true, in both modes; smaller ones
#     carry their data; every payload is below 8000 bytes.
#  7. es.notify_status once drained: one row, mode, worker_state running with
#     the pid of the database's only 'eventsourcing notifier', no lag, no
#     queue, last_position = max(global_position), events_sent = the events,
#     no error; and while the notifier is held up: queued_transactions and
#     lag_events count the queue, es.notify_queue has one row per
#     transaction with its positions in ascending order.
#  2. order: concurrent appenders (pgbench, transactions of two appends over
#     six streams, one in eight rolled back): per stream, sequence numbers
#     arrive strictly increasing, every event once; the same with a backlog
#     of more than one pass (1000 transactions) built while the notifier is
#     held up by a row lock on its queue (with phase 1's appends queued too:
#     the queue holds one row per committed transaction, positions
#     ascending, none of a rolled-back subtransaction); and a constructed
#     backlog whose first pass of 1000 transactions ends between two
#     transactions appending to one stream, the later of which (T2) has the
#     lower first position (T1 took its transaction id before appending):
#     the stream's events must still arrive in sequence order.
#     pg_terminate_backend of the notifier (twice, appenders running): it is
#     restarted, and a listener that stayed connected receives every event
#     once, in order.
#  5. a transaction holding an xid and an uncommitted append stay open: the
#     events appended meanwhile are received (within 10 s); the late append
#     is received after its commit; events_sent counts them.
#  3. kill -9 of the notifier, appenders running: the postmaster restarts
#     the server, the notifier runs again, a reconnecting subscriber ends
#     with every event applied once, no gap, and on its last connection
#     every event from its first notification on announced once, in order;
#     the queue drains.
#  4. a fast restart (test/cluster.sh restart) while appenders run and the
#     notifier is held up (rows are queued): the rows are published after
#     the restart without any new append (queue empty, events_sent,
#     last_position); the subscriber check as in 3.
#  8. on a server without the library preloaded (the suite cluster of
#     test/run.sh, or a private one): SET eventsourcing.notify = worker fails
#     with SQLSTATE 55000 once the library is loaded; a SET before the
#     library is loaded leaves commit mode in effect and events are still
#     announced.
# Finally the server log: the one crash caused by the kill, no other, no
# PANIC or assertion failure, no ERROR from a notifier.
#
# Exit status 0 only if every check passed.  ES_KEEP=1 keeps the cluster and
# the listeners' files.
# shellcheck source-path=SCRIPTDIR source=lib/common.bash
# shellcheck disable=SC2317  # (functions called through wait_until and is_eq)
MAIN_PORT=${PGPORT:-}
NW_PORT=${NOTIFY_WORKER_PORT:-25481}
NW_PORT2=${NOTIFY_WORKER_PORT2:-$((NW_PORT + 1))}
export PGPORT=${PGPORT:-$NW_PORT}
. "$(dirname "$0")/lib/common.bash"

unset ES_EXTRA_CONF
HERE=$(cd "$(dirname "$0")" && pwd -P)
REPO=${ES_REPO:-$(cd "$HERE/../.." && pwd -P)}
NW_TOP=$(mktemp -d "/tmp/es_notify_worker.XXXXXX")
chmod 755 "$NW_TOP"
NW_DIR="$NW_TOP/cluster"
NW_DIR2="$NW_TOP/plain"
NW_LOG="$NW_DIR/log/postgresql.log"
DB=es_nw
NW_STARTED=false
NW2_STARTED=false
T=$ES_TMP
CONNINFO="host=127.0.0.1 port=$NW_PORT user=postgres dbname=$DB"
BG_PIDS=()

# shellcheck disable=SC2317  # (invoked by the EXIT trap)
nw_cleanup() {
	local rc=$? p
	set +e
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ "${ES_KEEP:-0}" = 1 ]; then
		echo "$ES_SUITE: ES_KEEP=1: kept $NW_TOP (cluster port $NW_PORT)"
	else
		$NW_STARTED && "$REPO/test/cluster.sh" "$NW_DIR" "$NW_PORT" destroy >/dev/null 2>&1
		$NW2_STARTED && "$REPO/test/cluster.sh" "$NW_DIR2" "$NW_PORT2" destroy >/dev/null 2>&1
		rm -rf "$NW_TOP"
	fi
	(exit "$rc")
	es_cleanup
}
trap nw_cleanup EXIT

# qn SQL: tuples only, on es_nw of the suite's cluster
qn() { psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$NW_PORT" -U postgres -d "$DB" -c "$1"; }

# wait_until TIMEOUT CMD...: poll CMD every 0.2 s until it succeeds; false
# if it did not within TIMEOUT seconds
wait_until() {
	local limit=$1 end
	shift
	end=$(($(date +%s%N) + limit * 1000000000))
	while [ "$(date +%s%N)" -lt "$end" ]; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	"$@" >/dev/null 2>&1
}

# is_eq CMD... VALUE: true if the output of CMD is VALUE (for wait_until)
is_eq() {
	local want=${*: -1}
	local got
	got=$("${@:1:$#-1}" 2>/dev/null) || return 1
	[ "$got" = "$want" ]
}

# proc_gone PID: the process has ended
proc_gone() { ! kill -0 "$1" 2>/dev/null; }

# applied_count NAME: events a subscriber applied so far
applied_count() { grep -c '^A' "$T/$1.out" || true; }

# connections NAME: connections a listener made so far
connections() { grep -c '^C' "$T/$1.out" || true; }

# notifier_replaced OLD_PID: a notifier runs in the database, not OLD_PID
notifier_replaced() {
	local p
	p=$(notifier_pid 2>/dev/null) || return 1
	[ -n "$p" ] && [ "$p" != "$1" ]
}

# notifier_back OLD_PID: es.notify_status says running, with another pid
notifier_back() {
	local p
	p=$(qn "SELECT worker_state || '/' || coalesce(worker_pid, 0) FROM es.notify_status" 2>/dev/null) || return 1
	[ "${p%%/*}" = running ] && [ "${p#*/}" != "$1" ] && [ "${p#*/}" != 0 ]
}

nw_ready() {
	pg_isready -q -h 127.0.0.1 -p "$NW_PORT" -t 1 &&
		psql -X -At -h 127.0.0.1 -p "$NW_PORT" -U postgres -d "$DB" -c 'SELECT 1' >/dev/null 2>&1
}

# notifier_pid: the pid(s) of the database's notifier
notifier_pid() {
	qn "SELECT string_agg(pid::text, ',') FROM pg_stat_activity
	     WHERE backend_type = 'eventsourcing notifier' AND datname = '$DB'"
}

# drained: the queue is empty (committed rows) and the view says so
drained() {
	is_eq qn "SELECT (SELECT count(*) FROM es.notify_queue) || '/' || lag_events || '/' || queued_transactions FROM es.notify_status" "0/0/0"
}

# ---- listeners -------------------------------------------------------------

# listener_start NAME OPTIONS... CHANNELS...: notify_listen in the
# background, output in $T/NAME.out; waits until it listens
listener_start() {
	local name=$1 pid
	shift
	rm -f "$T/$name.stop" "$T/$name.ready"
	"$T/notify_listen" -d "$CONNINFO" -r "$T/$name.ready" -x "$T/$name.stop" "$@" \
		>"$T/$name.out" 2>"$T/$name.err" &
	pid=$!
	BG_PIDS+=("$pid")
	eval "LISTENER_$name=$pid"
	wait_until 10 test -e "$T/$name.ready" || die "listener $name did not start: $(cat "$T/$name.out" "$T/$name.err")"
}

# listener_stop NAME: ask it to stop, wait (10 s at most)
listener_stop() {
	local name=$1 pid rc=0
	pid=$(eval "echo \$LISTENER_$name")
	touch "$T/$name.stop"
	wait_until 10 proc_gone "$pid" || kill "$pid" 2>/dev/null || true
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || echo "INFO: listener $name exited with status $rc"
}

# rx_count NAME CHANNEL: notifications received so far on CHANNEL
rx_count() {
	awk -F'\t' -v ch="$2" '$1 == "N" && $3 == ch { n++ } END { print n + 0 }' "$T/$1.out"
}

# load_rx NAME: table rx_NAME(ord, conn, channel, payload, j) from the
# notifications in $T/NAME.out (j: the payload as jsonb, NULL if invalid)
load_rx() {
	local name=$1
	awk -F'\t' -v OFS=$'\x01' '$1 == "N" { print NR, $2, $3, $4 }' "$T/$name.out" >"$T/$name.rx"
	qn "SET client_min_messages = warning; DROP TABLE IF EXISTS rx_$name; CREATE TABLE rx_$name (ord int, conn int, channel text, payload text)" >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$NW_PORT" -U postgres -d "$DB" \
		-c "\\copy rx_$name FROM '$T/$name.rx' WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')" ||
		die "could not load the notifications of $name"
	qn "ALTER TABLE rx_$name ADD j jsonb; UPDATE rx_$name SET j = nw_json(payload)" >/dev/null
}

# load_applied NAME: table ap_NAME(ord, stream, seq, gp, how) from the
# subscriber's A lines
load_applied() {
	local name=$1
	awk -F'\t' -v OFS=$'\x01' '$1 == "A" { print NR, $2, $3, $4, $5 }' "$T/$name.out" >"$T/$name.ap"
	qn "SET client_min_messages = warning; DROP TABLE IF EXISTS ap_$name; CREATE TABLE ap_$name (ord int, stream text, seq bigint, gp bigint, how text)" >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$NW_PORT" -U postgres -d "$DB" \
		-c "\\copy ap_$name FROM '$T/$name.ap' WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')" ||
		die "could not load what $name applied"
}

# show_rows LABEL SQL: print (at most 10) offending rows under a failure
show_rows() {
	qn "$2 LIMIT 10" 2>&1 | sed "s/^/    $1: /" | cut -c1-400 || true
}

# check_delivery LABEL NAME CATEGORIES: what listener NAME received on the
# channels of CATEGORIES (a SQL array literal of names) against es.events
check_delivery() {
	local label=$1 name=$2 cats=$3 rx="rx_$2" n sel
	sel="SELECT * FROM $rx WHERE channel = ANY (SELECT 'es_' || c FROM unnest($cats::text[]) c)"

	n=$(qn "SELECT count(*) FROM ($sel) r WHERE j IS NULL")
	check "$label: notifications that are not JSON" "$n" 0

	n=$(qn "SELECT count(*) FROM ($sel) r WHERE NOT EXISTS (
	          SELECT 1 FROM es.events e
	           WHERE e.global_position = (r.j->>'global_position')::bigint
	             AND e.stream = r.j->>'stream'
	             AND e.sequence_number = (r.j->>'sequence_number')::bigint
	             AND e.event_id::text = r.j->>'event_id'
	             AND r.channel = 'es_' || e.category)")
	check "$label: notifications of no committed event (or on the wrong channel)" "$n" 0
	[ "$n" = 0 ] || show_rows "not committed" "SELECT channel, payload FROM ($sel) r WHERE NOT EXISTS (
	          SELECT 1 FROM es.events e WHERE e.global_position = (r.j->>'global_position')::bigint)"

	n=$(qn "SELECT count(*) FROM es.events e WHERE e.category = ANY ($cats::text[])
	          AND NOT EXISTS (SELECT 1 FROM ($sel) r WHERE (r.j->>'global_position')::bigint = e.global_position)")
	check "$label: committed events never notified" "$n" 0
	[ "$n" = 0 ] || show_rows "missing" "SELECT global_position, stream, sequence_number, event_type, created_at
	          FROM es.events e WHERE e.category = ANY ($cats::text[])
	          AND NOT EXISTS (SELECT 1 FROM ($sel) r WHERE (r.j->>'global_position')::bigint = e.global_position)
	          ORDER BY global_position"

	n=$(qn "SELECT count(*) - count(DISTINCT j->>'global_position') FROM ($sel) r")
	check "$label: events notified more than once" "$n" 0

	n=$(qn "SELECT count(*) FROM (
	          SELECT (j->>'sequence_number')::bigint AS seq,
	                 lag((j->>'sequence_number')::bigint) OVER (PARTITION BY conn, j->>'stream' ORDER BY ord) AS prev
	            FROM ($sel) r) s WHERE seq <= prev")
	check "$label: notifications whose sequence number is not above the previous one of their stream" "$n" 0
	[ "$n" = 0 ] || show_rows "out of order" "SELECT ord, stream, prev, seq FROM (
	          SELECT ord, j->>'stream' AS stream, (j->>'sequence_number')::bigint AS seq,
	                 lag((j->>'sequence_number')::bigint) OVER (PARTITION BY conn, j->>'stream' ORDER BY ord) AS prev
	            FROM ($sel) r) s WHERE seq <= prev ORDER BY ord"

	check "$label: notifications received = committed events" \
		"$(qn "SELECT count(*) FROM ($sel) r")" \
		"$(qn "SELECT count(*) FROM es.events WHERE category = ANY ($cats::text[])")"
}

# check_payloads LABEL NAME CATEGORIES: the members of every payload
check_payloads() {
	local label=$1 rx="rx_$2" cats=$3 n sel
	sel="SELECT r.*, e.* FROM $rx r JOIN es.events e ON e.global_position = (r.j->>'global_position')::bigint
	      WHERE r.channel = ANY (SELECT 'es_' || c FROM unnest($cats::text[]) c)"

	n=$(qn "SELECT count(*) FROM ($sel) x WHERE
	          (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(j) k) IS DISTINCT FROM
	          CASE WHEN j ? 'truncated'
	               THEN ARRAY['event_id','event_type','global_position','sequence_number','stream','timestamp','truncated','type','user_id','username']
	               ELSE ARRAY['data','event_id','event_type','global_position','sequence_number','stream','timestamp','type','user_id','username'] END")
	check "$label: payloads whose members are not those of the event message" "$n" 0
	[ "$n" = 0 ] || show_rows "members" "SELECT payload FROM ($sel) x"

	n=$(qn "SELECT count(*) FROM ($sel) x WHERE NOT (
	          j->>'type' = 'event' AND j->>'event_type' = event_type
	          AND (j->'data' = data OR (j->'truncated' = 'true' AND NOT j ? 'data'))
	          AND j->'user_id' = coalesce(to_jsonb(user_id), 'null') AND j->'username' = coalesce(to_jsonb(username), 'null')
	          AND (j->>'timestamp')::timestamptz = created_at AND j->>'timestamp' LIKE '%Z')")
	check "$label: payloads disagreeing with their es.events row" "$n" 0
	[ "$n" = 0 ] || show_rows "row" "SELECT payload FROM ($sel) x WHERE NOT (j->>'event_type' = event_type AND (j->>'timestamp')::timestamptz = created_at)"

	n=$(qn "SELECT count(*) FROM ($sel) x WHERE
	          (j - 'truncated') IS DISTINCT FROM
	          CASE WHEN j ? 'truncated' THEN (es_sync(stream, sequence_number - 1)->'events'->0) - 'data'
	               ELSE es_sync(stream, sequence_number - 1)->'events'->0 END")
	check "$label: payloads different from es_sync's message of the event" "$n" 0

	n=$(qn "SELECT count(*) FROM ($sel) x WHERE octet_length(payload) >= 8000")
	check "$label: payloads of 8000 bytes or more" "$n" 0
	n=$(qn "SELECT count(*) FROM ($sel) x WHERE (event_type = 'large') <> (j ? 'truncated')
	          OR (j ? 'truncated' AND (j->'truncated' <> 'true' OR j ? 'data'))")
	check "$label: events of more than 8000 bytes not sent truncated, or smaller ones truncated" "$n" 0
	check "$label: truncated notifications received (2 expected)" \
		"$(qn "SELECT count(*) FROM ($sel) x WHERE j->'truncated' = 'true' AND NOT j ? 'data'")" 2
	check "$label: notifications of the 7000-byte events carrying their data" \
		"$(qn "SELECT count(*) FROM ($sel) x WHERE event_type = 'small' AND j->'data' = data AND octet_length(data->>'s') = 7000")" 2
}

# check_subscriber LABEL NAME CATEGORY: a subscriber's account
check_subscriber() {
	local label=$1 name=$2 cat=$3 n out="$T/$2.out"
	load_rx "$name"
	load_applied "$name"

	n=$(grep -c '^C' "$out" || true)
	if [ "$n" -ge 2 ]; then
		pass "$label: the subscriber reconnected ($n connections)"
	else
		fail "$label: the subscriber did not lose and regain its connection ($n connections)"
	fi
	check "$label: subscriber errors / unparsed payloads" "$(grep -c -E '^(E|U)' "$out" || true)" 0
	n=$(grep -c '^G' "$out" || true)
	check "$label: gaps seen by the subscriber (a notification above the next sequence number)" "$n" 0
	[ "$n" = 0 ] || grep '^G' "$out" | head -n 10 | sed 's/^/    /'

	n=$(qn "SELECT count(*) FROM es.events e WHERE category = '$cat' AND NOT EXISTS (
	          SELECT 1 FROM ap_$name a WHERE a.stream = e.stream AND a.seq = e.sequence_number AND a.gp = e.global_position)")
	check "$label: committed events the subscriber never applied" "$n" 0
	n=$(qn "SELECT count(*) FROM ap_$name a WHERE NOT EXISTS (
	          SELECT 1 FROM es.events e WHERE a.stream = e.stream AND a.seq = e.sequence_number AND a.gp = e.global_position)")
	check "$label: applied events that are not in es.events" "$n" 0
	check "$label: events applied twice" "$(qn "SELECT count(*) - count(DISTINCT (stream, seq)) FROM ap_$name")" 0
	check "$label: events applied = committed events" "$(qn "SELECT count(*) FROM ap_$name")" \
		"$(qn "SELECT count(*) FROM es.events WHERE category = '$cat'")"

	# the raw notifications, connection by connection
	n=$(qn "SELECT count(*) FROM rx_$name r WHERE j IS NULL OR NOT EXISTS (
	          SELECT 1 FROM es.events e WHERE e.global_position = (r.j->>'global_position')::bigint
	             AND e.stream = r.j->>'stream' AND e.sequence_number = (r.j->>'sequence_number')::bigint)")
	check "$label: notifications of no committed event" "$n" 0
	n=$(qn "SELECT count(*) - count(DISTINCT (conn, j->>'global_position')) FROM rx_$name")
	check "$label: events notified twice on one connection" "$n" 0
	n=$(qn "SELECT count(*) FROM (
	          SELECT (j->>'sequence_number')::bigint AS seq,
	                 lag((j->>'sequence_number')::bigint) OVER (PARTITION BY conn, j->>'stream' ORDER BY ord) AS prev
	            FROM rx_$name) s WHERE seq <= prev")
	check "$label: notifications out of sequence order on one connection" "$n" 0
	# on the last connection, each stream: every event from the first one
	# notified to the stream's last, once
	n=$(qn "SELECT count(*) FROM (
	          SELECT e.stream, max(e.sequence_number) AS version, min(x.seq) AS first, count(x.seq) AS got
	            FROM es.events e
	            LEFT JOIN (SELECT j->>'stream' AS stream, (j->>'sequence_number')::bigint AS seq
	                         FROM rx_$name WHERE conn = (SELECT max(conn) FROM rx_$name)) x
	                   ON x.stream = e.stream AND x.seq = e.sequence_number
	           WHERE e.category = '$cat' GROUP BY e.stream) s
	         WHERE first IS NULL OR got <> version - first + 1
	            OR got <> (SELECT count(*) FROM rx_$name r WHERE r.conn = (SELECT max(conn) FROM rx_$name)
	                        AND r.j->>'stream' = s.stream)")
	check "$label: streams whose events were not all announced once on the last connection (from its first notification on)" "$n" 0
	echo "INFO: $label: $(grep -c '^N' "$out" || true) notifications, $(grep -c -P '^A.*\tsync$' "$out" || true) events applied by catch-up, $(grep -c -P '^A.*\tlive$' "$out" || true) live, $(grep -c '^D' "$out" || true) dropped"
}

# ---- appenders -------------------------------------------------------------

# pgbench_script CATEGORY: transactions of two appends over CATEGORY-1..6
# (streams locked in name order: no deadlock), one in eight rolled back
pgbench_script() {
	local cat=$1 f="$T/pgbench_$1.sql"
	cat >"$f" <<SQL
\\set a random(1, 6)
\\set b random(1, 6)
\\set r random(1, 8)
BEGIN;
SELECT es_append('$cat-' || least(:a, :b), 'tick', jsonb_build_object('client', :client_id, 'r', :r));
SELECT es_append('$cat-' || greatest(:a, :b), 'tick', jsonb_build_object('client', :client_id, 'r', :r));
\\if :r = 1
ROLLBACK;
\\else
COMMIT;
\\endif
SQL
	echo "$f"
}

# precreate CATEGORY: one event in each of CATEGORY-1..6
precreate() {
	qn "SELECT count(es_append('$1-' || s, 'init', '{}')) FROM generate_series(1, 6) s" >/dev/null
}

# appenders_start NAME CATEGORY SECONDS RETRY: pgbench (4 clients) in a loop
# until $T/NAME.stop exists; with RETRY=false the loop ends at pgbench's
# first failure
appenders_start() {
	local name=$1 cat=$2 secs=$3 retry=$4 script pid
	script=$(pgbench_script "$cat")
	rm -f "$T/app_$name.stop"
	(
		while [ ! -e "$T/app_$name.stop" ]; do
			if ! pgbench -n -c 4 -j 2 --max-tries=10 -T "$secs" -f "$script" -h 127.0.0.1 -p "$NW_PORT" -U postgres "$DB" \
				>>"$T/app_$name.pgbench" 2>&1; then
				echo "#pgbench failed" >>"$T/app_$name.pgbench"
				$retry || break
				sleep 0.3
			fi
		done
	) &
	pid=$!
	BG_PIDS+=("$pid")
	eval "APPENDERS_$name=$pid"
}

appenders_stop() {
	local name=$1 pid
	pid=$(eval "echo \$APPENDERS_$name")
	touch "$T/app_$name.stop"
	wait "$pid" || true
}

# ---- a psql session fed through a FIFO -------------------------------------

# sess_open NAME: psql on es_nw reading $T/NAME.in, output in $T/NAME.out
sess_open() {
	local name=$1 fd pid
	rm -f "$T/$name.in"
	mkfifo "$T/$name.in"
	psql -X -q -At -h 127.0.0.1 -p "$NW_PORT" -U postgres -d "$DB" -v VERBOSITY=sqlstate \
		<"$T/$name.in" >"$T/$name.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	exec {fd}>"$T/$name.in"
	eval "SESS_FD_$name=$fd SESS_PID_$name=$pid"
}

sess_send() {
	local fd
	fd=$(eval "echo \$SESS_FD_$1")
	{ echo "$2" 1>&"$fd"; } 2>/dev/null || true
}

# sess_wait NAME PATTERN [SECONDS]: wait until the session printed PATTERN
sess_wait() {
	wait_until "${3:-10}" grep -q -- "$2" "$T/$1.out"
}

sess_close() {
	local fd pid
	fd=$(eval "echo \$SESS_FD_$1")
	pid=$(eval "echo \$SESS_PID_$1")
	# other background processes inherited the FIFO: no EOF, say \q
	sess_send "$1" '\q'
	exec {fd}>&-
	wait "$pid" 2>/dev/null || true
}

# hold_start: hold the notifier up: a queue row (from a prepared
# transaction, whose COMMIT PREPARED does not wake the notifier) locked FOR
# UPDATE by session "hold", so that the notifier's next pass waits on it
hold_start() {
	local try
	sess_open hold
	for try in 1 2 3 4 5; do
		sess_send hold "BEGIN; SELECT es_append('hold-1', 'hold', '{}') IS NOT NULL; PREPARE TRANSACTION 'nw_hold';
COMMIT PREPARED 'nw_hold'; BEGIN; SELECT 'locked$try:' || count(*) FROM (SELECT 1 FROM es.notify_queue FOR UPDATE) s;"
		sess_wait hold "locked$try:" 10 || die "hold: no answer: $(cat "$T/hold.out")"
		if grep -q "locked$try:[1-9]" "$T/hold.out"; then
			break
		fi
		sess_send hold "ROLLBACK;"
	done
	grep -q "locked[0-9]:[1-9]" "$T/hold.out" || die "hold: could not lock a queue row in 5 tries: $(cat "$T/hold.out")"
	if wait_until 10 is_eq qn "SELECT string_agg(wait_event_type, ',') FROM pg_stat_activity
	        WHERE backend_type = 'eventsourcing notifier' AND datname = '$DB'" Lock; then
		pass "hold: the notifier waits for the row lock on its queue"
	else
		die "hold: the notifier is not waiting for the lock: $(qn "SELECT wait_event_type, wait_event, state, query FROM pg_stat_activity WHERE backend_type = 'eventsourcing notifier'")"
	fi
	HOLD_POSITION=$(qn "SELECT max(global_position) FROM es.events WHERE stream = 'hold-1'")
}

hold_release() {
	sess_send hold "ROLLBACK;"
	sess_close hold
}

# ============================================================================

for port in "$NW_PORT" "$NW_PORT2"; do
	if pg_isready -q -h 127.0.0.1 -p "$port" -t 1; then
		die "port $port is already in use (a server answers there); set NOTIFY_WORKER_PORT"
	fi
done

if ! [ -f "$(pg_config --sharedir)/extension/eventsourcing--1.2--1.3.sql" ]; then
	die "eventsourcing 1.3 is not installed (no eventsourcing--1.2--1.3.sql)"
fi

log "compiling notify_listen"
cc -O2 -Wall -I"$(pg_config --includedir)" -o "$T/notify_listen" "$HERE/notify_listen.c" \
	-L"$(pg_config --libdir)" -lpq >"$T/cc.log" 2>&1 || die "notify_listen did not compile: $(cat "$T/cc.log")"

log "cluster: $NW_DIR on port $NW_PORT (eventsourcing preloaded)"
NW_STARTED=true
ES_EXTRA_CONF="shared_preload_libraries = 'eventsourcing'
max_prepared_transactions = 10
log_line_prefix = '%m [%p] %b %q%u@%d '" \
	"$REPO/test/cluster.sh" "$NW_DIR" "$NW_PORT" start >"$T/cluster-start.log" 2>&1 ||
	die "the cluster did not start: $(tail -n 20 "$T/cluster-start.log")"
NW_LOG="$(readlink -f "$NW_DIR")/log/postgresql.log"
psql -X -q -h 127.0.0.1 -p "$NW_PORT" -U postgres -d postgres -c "CREATE DATABASE $DB" || die "CREATE DATABASE failed"
qn "CREATE EXTENSION eventsourcing" || die "CREATE EXTENSION failed"
check "extension version" "$(qn "SELECT extversion FROM pg_extension WHERE extname = 'eventsourcing'")" 1.3
check "eventsourcing.notify default when preloaded" "$(qn "SHOW eventsourcing.notify")" worker
qn "CREATE FUNCTION nw_json(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS
    \$\$ BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END \$\$"

# the raw listener of the phases without a crash
listener_start raw es_qone es_qbig es_wone es_wbig es_cone es_cbig es_ord es_bkl es_hold es_dx es_dxf es_trm es_lot

# ---- 1, 6, 7: delivery and payloads, worker mode then commit mode ----------

# ops MODE PREFIX: the appends of phase 1 in categories PREFIXone, PREFIXbig
ops() {
	local mode=$1 p=$2 prepared=""
	if [ "$mode" = worker ]; then
		prepared="
BEGIN; SELECT es_append('${p}one-6', 'prepared', '{\"n\": 6}') IS NOT NULL; PREPARE TRANSACTION 'nw_commit';
BEGIN; SELECT es_append('${p}one-7', 'rolled_back', '{\"n\": 7}') IS NOT NULL; PREPARE TRANSACTION 'nw_rollback';
COMMIT PREPARED 'nw_commit';
ROLLBACK PREPARED 'nw_rollback';"
	fi
	psql -X -q -At -h 127.0.0.1 -p "$NW_PORT" -U postgres -d "$DB" -v VERBOSITY=sqlstate >"$T/ops_$p.out" 2>&1 <<SQL || true
SET eventsourcing.notify = $mode;
SELECT es_append('${p}one-1', 'created', '{"n": 1}', user_id => 'u1', username => 'alice') IS NOT NULL;
SELECT es_append('${p}one-2', 'created', '{"n": 2, "t": "tab\\tquote\\"é"}', metadata => '{"m": true}') IS NOT NULL;
BEGIN;
SELECT es_append('${p}one-1', 'rolled_back', '{"n": -1}') IS NOT NULL;
SELECT es_append('${p}one-3', 'rolled_back', '{"n": -2}') IS NOT NULL;
ROLLBACK;
BEGIN;
SELECT es_append('${p}one-1', 'kept', '{"n": 3}') IS NOT NULL;
SAVEPOINT s;
SELECT es_append('${p}one-2', 'rolled_back', '{"n": -3}') IS NOT NULL;
ROLLBACK TO SAVEPOINT s;
SELECT es_append('${p}one-2', 'kept', '{"n": 4}') IS NOT NULL;
COMMIT;
BEGIN;
SAVEPOINT a;
SELECT es_append('${p}one-3', 'rolled_back', '{"n": -5}') IS NOT NULL;
SAVEPOINT b;
SELECT es_append('${p}one-4', 'rolled_back', '{"n": -6}') IS NOT NULL;
RELEASE SAVEPOINT b;
ROLLBACK TO SAVEPOINT a;
SELECT es_append('${p}one-3', 'kept', '{"n": 6}') IS NOT NULL;
SAVEPOINT c;
SELECT es_append('${p}one-2', 'kept', '{"n": 7}') IS NOT NULL;
RELEASE SAVEPOINT c;
COMMIT;
DO \$\$
BEGIN
    PERFORM es_append('${p}one-3', 'kept', '{"n": 5}');
    BEGIN
        PERFORM es_append('${p}one-1', 'rolled_back', '{"n": -4}');
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
END
\$\$;
SELECT count(*) FROM es_append_batch('${p}one-4', '[{"event_type": "b", "data": {"i": 1}}, {"event_type": "b", "data": {"i": 2}}, {"event_type": "b", "data": {"i": 3}}]');
INSERT INTO es.events (stream, event_type, data, username) VALUES ('${p}one-4', 'inserted', '{"i": 4}', 'bob');
BEGIN;
SELECT es_append('${p}one-5', 'rolled_back', '{}') IS NOT NULL;
SELECT 1 / 0;
ROLLBACK;
SELECT es_append('${p}big-1', 'small', jsonb_build_object('s', repeat('a', 7000))) IS NOT NULL;
SELECT es_append('${p}big-1', 'large', jsonb_build_object('s', repeat('b', 9000))) IS NOT NULL;
SELECT es_append('${p}big-2', 'large', jsonb_build_object('s', repeat('c', 100000))) IS NOT NULL;
SELECT es_append('${p}big-2', 'small', jsonb_build_object('s', repeat('d', 7000))) IS NOT NULL;
$prepared
SQL
}

for mode in worker commit; do
	p=${mode:0:1}
	log "phase 1: $mode mode"
	ops "$mode" "$p"
	check "$mode mode: the appends ran, with the one expected error (22012)" \
		"$(grep -E 'ERROR|WARNING|FATAL' "$T/ops_$p.out" | tr '\n' ' ')" "ERROR:  22012 "
	if [ "$mode" = worker ]; then expected=16; else expected=15; fi
	check "$mode mode: committed events (no rolled-back one)" \
		"$(qn "SELECT count(*) || '/' || count(*) FILTER (WHERE event_type = 'rolled_back') FROM es.events WHERE category IN ('${p}one', '${p}big')")" "$expected/0"
	wait_until 10 is_eq rx_count raw "es_${p}one" $((expected - 4)) || true
	wait_until 10 is_eq rx_count raw "es_${p}big" 4 || true
	if [ "$mode" = worker ]; then
		wait_until 10 drained || true
		# 7: the view once drained
		st=$(qn "SELECT count(*) FROM es.notify_status")
		check "es.notify_status: rows" "$st" 1
		check "es.notify_status: mode, state, pid = the database's only notifier" \
			"$(qn "SELECT mode || '/' || worker_state || '/' || (worker_pid::text = '$(notifier_pid)') FROM es.notify_status")" \
			"worker/running/true"
		check "es.notify_status: queued_transactions, lag_events, lag, es.notify_queue rows once drained" \
			"$(qn "SELECT queued_transactions || '/' || lag_events || '/' || coalesce(lag::text, 'NULL') || '/' || (SELECT count(*) FROM es.notify_queue) FROM es.notify_status")" \
			"0/0/NULL/0"
		check "es.notify_status: last_position = max(global_position)" \
			"$(qn "SELECT last_position FROM es.notify_status")" "$(qn "SELECT max(global_position) FROM es.events")"
		check "es.notify_status: events_sent = events appended (all in worker mode)" \
			"$(qn "SELECT events_sent FROM es.notify_status")" "$(qn "SELECT count(*) FROM es.events")"
		check "es.notify_status: batches between 1 and events_sent, last_batch_at, worker_started_at set" \
			"$(qn "SELECT batches BETWEEN 1 AND events_sent AND last_batch_at IS NOT NULL AND worker_started_at IS NOT NULL FROM es.notify_status")" t
		check "es.notify_status: last_error, last_error_at" \
			"$(qn "SELECT coalesce(last_error, 'NULL') || '/' || coalesce(last_error_at::text, 'NULL') FROM es.notify_status")" "NULL/NULL"
		check "es_notify_worker() agrees with the view" \
			"$(qn "SELECT (SELECT row(worker_pid, worker_state, last_position, events_sent, last_error) FROM es_notify_worker())
			          = (SELECT row(worker_pid, worker_state, last_position, events_sent, last_error) FROM es.notify_status)")" t
	else
		check "es.notify_status: mode in a session with SET eventsourcing.notify = commit" \
			"$(qn "SET eventsourcing.notify = commit; SELECT mode FROM es.notify_status")" commit
	fi
done

# ---- 2: order per stream, concurrent appenders ------------------------------

log "phase 2: concurrent appenders (pgbench, 4 clients, 5 s)"
precreate ord
script=$(pgbench_script ord)
pgbench -n -c 4 -j 2 --max-tries=10 -T 5 -f "$script" -h 127.0.0.1 -p "$NW_PORT" -U postgres "$DB" >"$T/ord.pgbench" 2>&1 ||
	fail "pgbench (ord) failed: $(tail -n 5 "$T/ord.pgbench")"
ord_events=$(qn "SELECT count(*) FROM es.events WHERE category = 'ord'")
echo "INFO: ord: $ord_events events, $(grep -E '^number of (transactions actually processed|failed)' "$T/ord.pgbench" | tr '\n' ' ')"
wait_until 15 is_eq rx_count raw es_ord "$ord_events" || true

log "phase 2: a backlog of more than one pass (notifier held up)"
precreate bkl
wait_until 10 drained || true
hold_start
pgbench -n -c 4 -j 2 --max-tries=10 -t 500 -f "$(pgbench_script bkl)" -h 127.0.0.1 -p "$NW_PORT" -U postgres "$DB" >"$T/bkl.pgbench" 2>&1 ||
	fail "pgbench (bkl) failed: $(tail -n 5 "$T/bkl.pgbench")"
# the appends of phase 1 (savepoints, rollbacks, PREPARE) queued too
ops worker q
check "backlog: phase 1's appends ran (categories qone, qbig), with the one expected error" \
	"$(grep -E 'ERROR|WARNING|FATAL' "$T/ops_q.out" | tr '\n' ' ')" "ERROR:  22012 "
check "backlog: the view counts the queued transactions and events (one row per transaction since the hold)" \
	"$(qn "SELECT queued_transactions || '/' || lag_events || '/' || (lag > '0'::interval) FROM es.notify_status")" \
	"$(qn "SELECT count(DISTINCT transaction_id) || '/' || count(*) || '/true' FROM es.events WHERE global_position >= $HOLD_POSITION")"
n=$(qn "SELECT count(*) FROM es.notify_queue q
          FULL JOIN (SELECT transaction_id, array_agg(global_position ORDER BY global_position) AS p
                       FROM es.events WHERE global_position >= $HOLD_POSITION GROUP BY transaction_id) e
          USING (transaction_id) WHERE q.positions IS DISTINCT FROM e.p")
check "backlog: es.notify_queue holds one row per committed transaction, its positions ascending" "$n" 0
backlog=$(qn "SELECT queued_transactions FROM es.notify_status")
if [ "$backlog" -gt 1000 ]; then
	pass "backlog: more than one pass of transactions queued ($backlog)"
else
	fail "backlog: only $backlog transactions queued; the test needs more than 1000"
fi
hold_release
bkl_events=$(qn "SELECT count(*) FROM es.events WHERE category = 'bkl'")
wait_until 20 is_eq rx_count raw es_bkl "$bkl_events" || true
wait_until 10 is_eq rx_count raw es_qbig 4 || true
wait_until 10 drained || true

log "phase 2: a backlog whose first pass ends between two appends to one stream"
# T1 takes a transaction id first (as when it writes another table), T2
# appends to dx-2, T1 appends to dx-1, T2 appends to dx-1 (waiting for T1's
# commit; allowed: T1 is older).  T2's queue row then starts below T1's
# although its dx-1 event comes after T1's.  With 999 transactions queued
# before them (the notifier held up), a pass of 1000 transactions in
# es.notify_queue order ends between T2 and T1.
precreate dx
wait_until 10 drained || true
hold_start
awk 'BEGIN { for (i = 1; i <= 999; i++) print "SELECT es_append('"'"'dxf-1'"'"', '"'"'filler'"'"', '"'"'{}'"'"') IS NULL;" }' |
	psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$NW_PORT" -U postgres -d "$DB" >/dev/null ||
	fail "split: the 999 filler appends failed"
sess_open t1
sess_open t2
sess_send t1 "BEGIN; SELECT 'a1:' || txid_current();"
sess_wait t1 'a1:' || fail "split: T1 did not begin: $(cat "$T/t1.out")"
sess_send t2 "BEGIN; SELECT 'b1:' || (es_append('dx-2', 'split', '{\"t\": 2}')).global_position;"
sess_wait t2 'b1:' || fail "split: T2's first append: $(cat "$T/t2.out")"
sess_send t1 "SELECT 'a2:' || (es_append('dx-1', 'split', '{\"t\": 1}')).global_position;"
sess_wait t1 'a2:' || fail "split: T1's append: $(cat "$T/t1.out")"
sess_send t2 "SELECT 'b2:' || (es_append('dx-1', 'split', '{\"t\": 2}')).global_position;"
sleep 0.5
sess_send t1 "COMMIT; SELECT 'a3:done';"
sess_wait t1 'a3:' || fail "split: T1's commit: $(cat "$T/t1.out")"
sess_wait t2 'b2:' || fail "split: T2's second append: $(cat "$T/t2.out")"
sess_send t2 "COMMIT; SELECT 'b3:done';"
sess_wait t2 'b3:' || fail "split: T2's commit: $(cat "$T/t2.out")"
sess_close t1
sess_close t2
check "split: queued rows, and T2's row before T1's in queue order (positions[1]), T1's dx-1 event before T2's" \
	"$(qn "SELECT count(*) || '/' ||
	              ((SELECT q.positions[1] FROM es.notify_queue q JOIN es.events e ON e.transaction_id = q.transaction_id
	                 WHERE e.stream = 'dx-2' AND e.event_type = 'split')
	             < (SELECT q.positions[1] FROM es.notify_queue q JOIN es.events e ON e.transaction_id = q.transaction_id
	                 WHERE e.stream = 'dx-1' AND e.event_type = 'split' AND e.data->>'t' = '1')) || '/' ||
	              (SELECT string_agg(data->>'t', ',' ORDER BY sequence_number) FROM es.events WHERE stream = 'dx-1' AND event_type = 'split')
	         FROM es.notify_queue")" "1002/true/1,2"
hold_release
wait_until 15 is_eq rx_count raw es_dxf 999 || true
wait_until 15 is_eq rx_count raw es_dx 9 || true
wait_until 10 drained || true
check "split: dx-1 as received (sequence_number:t, in arrival order)" \
	"$(grep -P '^N\t[0-9]+\tes_dx\t.*"stream":"dx-1"' "$T/raw.out" | sed -E 's/.*"sequence_number":([0-9]+),.*"data":\{("t": ([0-9]+))?.*/\1:\3/' | tr '\n' ' ')" \
	"1: 2:1 3:2 "

# ---- worker-only failure: pg_terminate_backend -----------------------------

log "terminate: pg_terminate_backend of the notifier, appenders running"
precreate trm
appenders_start trm trm 2 true
sleep 1
for round in 1 2; do
	pid=$(notifier_pid)
	[[ "$pid" =~ ^[0-9]+$ ]] || die "terminate $round: not one notifier running: '$pid'"
	qn "SELECT pg_terminate_backend($pid)" >/dev/null
	if wait_until 15 notifier_replaced "$pid"; then
		pass "terminate $round: a new notifier runs ($pid -> $(notifier_pid))"
	else
		fail "terminate $round: no new notifier within 15 s after terminating $pid (now: '$(notifier_pid)')"
	fi
	sleep 1.5
done
appenders_stop trm
trm_events=$(qn "SELECT count(*) FROM es.events WHERE category = 'trm'")
wait_until 20 drained || true
wait_until 10 is_eq rx_count raw es_trm "$trm_events" || true
check "terminate: es.notify_status worker_state once drained" "$(qn "SELECT worker_state FROM es.notify_status")" running
echo "INFO: terminate: $trm_events events; pgbench: $(grep -c '#pgbench failed' "$T/app_trm.pgbench" || true) failed runs"

# ---- 5: a long-open transaction ---------------------------------------------

log "phase 5: long-open transactions"
sent0=$(qn "SELECT events_sent FROM es.notify_status")
sess_open idle
sess_send idle "BEGIN; SELECT 'xid:' || txid_current();"
sess_wait idle "xid:" || fail "the idle transaction did not start: $(cat "$T/idle.out")"
sess_open late
sess_send late "BEGIN; SELECT 'late:' || (es_append('lot-late', 'late', '{}')).global_position;"
sess_wait late "late:" || fail "the late append did not run: $(cat "$T/late.out")"
qn "SELECT count(es_append('lot-1', 'meanwhile', jsonb_build_object('i', i))) FROM generate_series(1, 1) i" >/dev/null
for i in $(seq 2 20); do
	qn "SELECT es_append('lot-1', 'meanwhile', jsonb_build_object('i', $i)) IS NOT NULL" >/dev/null
done
wait_until 10 is_eq rx_count raw es_lot 20 || true
check "long-open transactions: events appended meanwhile received within 10 s" "$(rx_count raw es_lot)" 20
check "long-open transactions: the view shows no lag (the open append is not queued yet)" \
	"$(qn "SELECT lag_events || '/' || queued_transactions FROM es.notify_status")" "0/0"
sess_send late "COMMIT; SELECT 'committed';"
sess_wait late committed || fail "the late append did not commit: $(cat "$T/late.out")"
wait_until 10 is_eq rx_count raw es_lot 21 || true
check "long-open transactions: the late append received after its commit" \
	"$(grep -c -P '^N\t[0-9]+\tes_lot\t.*"stream":"lot-late"' "$T/raw.out" || true)" 1
sess_send idle "COMMIT;"
sess_close idle
sess_close late
wait_until 10 drained || true
check "es.notify_status: events_sent grew by the 21 events of the phase" \
	"$(qn "SELECT events_sent - $sent0 FROM es.notify_status")" 21
# the late event was the last announced, though not the highest position
check "es.notify_status: last_position = the last event announced (the late one), last_error" \
	"$(qn "SELECT (last_position = (SELECT global_position FROM es.events WHERE stream = 'lot-late')) || '/' || coalesce(last_error, 'NULL') FROM es.notify_status")" "true/NULL"

listener_stop raw
check "the raw listener kept its one connection" "$(grep -c -E '^(C|L)' "$T/raw.out" || true)" 1
load_rx raw
check_delivery "worker mode" raw "'{wone,wbig}'"
check_payloads "worker mode" raw "'{wone,wbig}'"
check_delivery "commit mode" raw "'{cone,cbig}'"
check_payloads "commit mode" raw "'{cone,cbig}'"
check_delivery "concurrent appenders" raw "'{ord}'"
check_delivery "backlog of more than one pass" raw "'{bkl,hold,qone,qbig}'"
check_payloads "backlog, phase 1's appends" raw "'{qone,qbig}'"
check_delivery "backlog split between two appends to one stream" raw "'{dx,dxf}'"
check_delivery "pg_terminate_backend of the notifier" raw "'{trm}'"
check_delivery "long-open transactions" raw "'{lot}'"

# ---- 3: kill -9 of the notifier ----------------------------------------------

log "phase 3: kill -9 of the notifier, appenders running"
precreate kil
listener_start kil -R -t 90 -s kil-1,kil-2,kil-3,kil-4,kil-5,kil-6 es_kil
appenders_start kil kil 2 true
sleep 2
pid=$(notifier_pid)
[[ "$pid" =~ ^[0-9]+$ ]] || die "kill -9: not one notifier running: '$pid'"
crashes_before=$(grep -c 'terminated by signal' "$NW_LOG" || true)
kill -9 "$pid"
sleep 1
wait_until 60 nw_ready || die "the server did not come back after kill -9 of the notifier"
if wait_until 20 notifier_back "$pid"; then
	pass "kill -9: the notifier runs again ($pid -> $(notifier_pid)), worker_state running"
else
	fail "kill -9: the notifier does not run again: $(qn "SELECT worker_state, worker_pid FROM es.notify_status"), pg_stat_activity: '$(notifier_pid)'"
fi
check "kill -9: the postmaster restarted the server (log)" \
	"$(grep -c -E 'background worker "eventsourcing notifier" \(PID '"$pid"'\) was terminated by signal 9' "$NW_LOG" || true)/$(grep -c 'all server processes terminated; reinitializing' "$NW_LOG" || true)" "1/1"
sleep 3
appenders_stop kil
wait_until 20 is_eq connections kil 2 || true
echo "INFO: kill -9: pgbench: $(grep -c '#pgbench failed' "$T/app_kil.pgbench" || true) failed runs"
qn "SELECT count(es_append('kil-' || s, 'after', '{}')) FROM generate_series(1, 6) s" >/dev/null
wait_until 30 drained || fail "kill -9: the queue did not drain within 30 s: $(qn "SELECT * FROM es.notify_status")"
kil_events=$(qn "SELECT count(*) FROM es.events WHERE category = 'kil'")
wait_until 20 is_eq applied_count kil "$kil_events" || true
listener_stop kil
check "kill -9: es.notify_queue rows once drained" "$(qn "SELECT count(*) FROM es.notify_queue")" 0
check_subscriber "kill -9" kil kil
check "kill -9: one crash in the log" "$(($(grep -c 'terminated by signal' "$NW_LOG" || true) - crashes_before))" 1

# ---- 4: restart ------------------------------------------------------------

log "phase 4: fast restart while appenders run and rows are queued"
precreate rst
wait_until 10 drained || true
listener_start rst -R -t 90 -s rst-1,rst-2,rst-3,rst-4,rst-5,rst-6 es_rst
hold_start
appenders_start rst rst 60 false
sleep 2
queued_before=$(qn "SELECT lag_events FROM es.notify_status")
if [ "$queued_before" -gt 0 ]; then
	pass "restart: events queued before the restart ($queued_before)"
else
	fail "restart: nothing queued before the restart"
fi
touch "$T/app_rst.stop"
restart_at=$(qn "SELECT now()")
"$REPO/test/cluster.sh" "$NW_DIR" "$NW_PORT" restart >"$T/restart.log" 2>&1 || die "restart failed: $(cat "$T/restart.log")"
appenders_stop rst
sess_close hold
grep -q '#pgbench failed' "$T/app_rst.pgbench" &&
	echo "INFO: restart: the appenders were cut off by the restart (mid-stream)"
# no append from here until the queue is empty
if wait_until 20 drained; then
	pass "restart: the rows left in the queue were published after the restart, without a new append"
else
	fail "restart: the queue is not empty 20 s after the restart: $(qn "SELECT * FROM es.notify_status")"
fi
check "restart: notifier started after the restart, running, events_sent >= events queued before, last_position = max(global_position)" \
	"$(qn "SELECT worker_state || '/' || (worker_started_at > '$restart_at') || '/' || (events_sent >= $queued_before) || '/' || (last_position = (SELECT max(global_position) FROM es.events)) FROM es.notify_status")" \
	"running/true/true/true"
echo "INFO: restart: $(qn "SELECT 'events_sent ' || events_sent || ', batches ' || batches FROM es.notify_status") after the restart; $queued_before queued 2 s before it"
wait_until 20 is_eq connections rst 2 || true
qn "SELECT count(es_append('rst-' || s, 'after', '{}')) FROM generate_series(1, 6) s, generate_series(1, 3) i" >/dev/null
wait_until 10 drained || true
rst_events=$(qn "SELECT count(*) FROM es.events WHERE category = 'rst'")
wait_until 20 is_eq applied_count rst "$rst_events" || true
listener_stop rst
check_subscriber "restart" rst rst
echo "INFO: restart: events appended before the restart that the reconnected subscriber received as notifications: $(qn "SELECT count(*) FROM rx_rst r WHERE conn > 1 AND (j->>'global_position')::bigint IN (SELECT global_position FROM es.events WHERE created_at < '$restart_at')")"

# ---- 8: no preloading ----------------------------------------------------------

log "phase 8: SET eventsourcing.notify = worker without the library preloaded"
plain_port=""
if [ -n "$MAIN_PORT" ] && [ "$MAIN_PORT" != "$NW_PORT" ] && pg_isready -q -h "$PGHOST" -p "$MAIN_PORT" -t 2 &&
	! psql -X -At -p "$MAIN_PORT" -d postgres -c "SHOW shared_preload_libraries" | grep -q eventsourcing; then
	plain_port=$MAIN_PORT
	plain_db="es_${ES_SUITE}_$$"
	es_create_db "$plain_db"
	log "using the suite cluster on port $plain_port, database $plain_db"
else
	NW2_STARTED=true
	"$REPO/test/cluster.sh" "$NW_DIR2" "$NW_PORT2" start >"$T/cluster2-start.log" 2>&1 ||
		die "the second cluster did not start: $(tail -n 20 "$T/cluster2-start.log")"
	plain_port=$NW_PORT2
	plain_db=es_plain
	if ! psql -X -q -h 127.0.0.1 -p "$plain_port" -U postgres -d postgres -c "CREATE DATABASE $plain_db" ||
		! psql -X -q -h 127.0.0.1 -p "$plain_port" -U postgres -d "$plain_db" -c "CREATE EXTENSION eventsourcing"; then
		die "could not set up $plain_db on port $plain_port"
	fi
	log "using a private cluster on port $plain_port"
fi
qp() { psql -X -q -At -h 127.0.0.1 -p "$plain_port" -U postgres -d "$plain_db" -v VERBOSITY=sqlstate "$@" 2>&1 || true; }
check "no preloading: shared_preload_libraries does not name eventsourcing" \
	"$(qp -c "SELECT position('eventsourcing' IN current_setting('shared_preload_libraries'))")" 0
check "no preloading: SET eventsourcing.notify = worker after LOAD" \
	"$(qp -c "LOAD 'eventsourcing'" -c "SET eventsourcing.notify = worker" | tr '\n' ' ')" "ERROR:  55000 "
check "no preloading: SET worker after a function call, then SHOW" \
	"$(qp -c "SELECT es_version('plain-1')" -c "SET eventsourcing.notify = worker" -c "SHOW eventsourcing.notify" | tr '\n' ' ')" \
	"0 ERROR:  55000 commit "
check "no preloading: SET commit / off work" \
	"$(qp -c "SELECT es_version('plain-1')" -c "SET eventsourcing.notify = off" -c "SHOW eventsourcing.notify" -c "SET eventsourcing.notify = commit" -c "SHOW eventsourcing.notify" | tr '\n' ' ')" \
	"0 off commit "
# the SET of a session that has not loaded the library sets a placeholder:
# PostgreSQL cannot refuse it; loading the library must leave commit mode
rm -f "$T/plain.stop" "$T/plain.ready"
"$T/notify_listen" -d "host=127.0.0.1 port=$plain_port user=postgres dbname=$plain_db" -r "$T/plain.ready" \
	-x "$T/plain.stop" es_plain >"$T/plain.out" 2>&1 &
plain_listener=$!
BG_PIDS+=("$plain_listener")
wait_until 10 test -e "$T/plain.ready" || fail "the listener on $plain_db did not start"
got=$(qp -c "SET eventsourcing.notify = worker" -c "SELECT (es_append('plain-1', 'e', '{}')).sequence_number" -c "SHOW eventsourcing.notify" -c "SELECT mode FROM es.notify_status" | tr '\n' ' ')
echo "INFO: no preloading: a fresh session's SET worker, append, SHOW, es.notify_status.mode: $got"
check "no preloading: a SET worker before the library was loaded leaves commit mode in effect" \
	"$(echo "$got" | awk '{print $(NF-1), $NF}')" "commit commit"
wait_until 10 grep -q '"stream":"plain-1"' "$T/plain.out" || true
check "no preloading: that session's append was announced" "$(grep -c '"stream":"plain-1"' "$T/plain.out" || true)" 1
touch "$T/plain.stop"
wait "$plain_listener" || true

# ---- the server log ----------------------------------------------------------

if grep -qE 'PANIC|TRAP:|was terminated by exception' "$NW_LOG"; then
	fail "server log: PANIC or assertion failure:"
	grep -E 'PANIC|TRAP:|was terminated by exception' "$NW_LOG" | head -n 10 | sed 's/^/    /'
else
	pass "server log: no PANIC or assertion failure"
fi
check "server log: crashes (only the kill -9)" "$(grep -c 'terminated by signal' "$NW_LOG" || true)" 1
n=$(grep -E '\] eventsourcing (notifier|launcher) ' "$NW_LOG" | grep -cE '(ERROR|WARNING|PANIC):' || true)
check "server log: ERROR or WARNING lines of a notifier or the launcher" "$n" 0
[ "$n" = 0 ] || grep -E '\] eventsourcing (notifier|launcher) ' "$NW_LOG" | grep -E '(ERROR|WARNING|PANIC):' | head -n 10 | sed 's/^/    /'
echo "INFO: server log: $(grep -c 'ERROR:' "$NW_LOG" || true) ERROR lines in all (the suite causes some: 22012, terminated connections)"

es_finish
