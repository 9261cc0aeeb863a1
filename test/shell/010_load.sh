#!/usr/bin/env bash
# test/shell/010_load.sh - pgbench load on hot and cold streams.
#
# Phase 1: 8 clients append with es_append, half of the appends to one hot
# stream ("playbook-hot"), the others spread over 1000 cold playbook streams
# and 100 image streams, a fixed number of transactions.
# Phase 2: the same streams, half of the transactions es_append, half plain
# INSERT INTO es.events (the second door to the same trigger).
#
# During phase 1 a LISTEN session (eventsourcing.notify = commit, the
# default) collects the notifications: exactly one per stored event, with
# the stored stream, sequence number and event id.
#
# After each phase: pgbench reports no failed transaction and no aborted
# client, the number of stored events equals the number of transactions
# processed, every stream is numbered 1..n without gap or duplicate,
# es.streams agrees with es.events, global positions and event ids are
# unique, es_read_all returns every event.
#
# Environment: see lib/common.bash; LOAD_CLIENTS (8), LOAD_TRANSACTIONS (1000
# per client), LOAD_JOBS (2).
# shellcheck source-path=SCRIPTDIR source=lib/common.bash
. "$(dirname "$0")/lib/common.bash"

CLIENTS=${LOAD_CLIENTS:-8}
TX=${LOAD_TRANSACTIONS:-1000}
JOBS=${LOAD_JOBS:-2}
DB="es_load_$$"

es_wait_ready 60 || die "server not ready on $PGHOST:$PGPORT"
es_create_db "$DB"

# es_append: 50% hot stream, 40% cold playbook streams, 10% image streams
cat >"$ES_TMP/append.sql" <<'SQL'
\set r random(1, 100)
\set s random(1, 1000)
\set t random(1, 4)
\set x random(0, 2000)
\set y random(0, 2000)
SELECT sequence_number FROM es_append(
    CASE WHEN :r <= 50 THEN 'playbook-hot'
         WHEN :r <= 90 THEN 'playbook-' || :s
         ELSE 'image-' || (:s % 100) END,
    (ARRAY['module_add', 'module_move', 'module_update', 'module_delete'])[:t],
    jsonb_build_object('moduleId', 'm' || :s,
                       'position', jsonb_build_object('x', :x, 'y', :y),
                       'module', jsonb_build_object('name', 'ansible.builtin.copy',
                                                    'params', jsonb_build_object('dest', '/etc/motd'))),
    CASE WHEN :t = 1 THEN jsonb_build_object('client', :client_id) END,
    user_id => CASE WHEN :t <= 2 THEN 'u' || (:s % 10) END,
    username => CASE WHEN :t <= 2 THEN 'user ' || (:s % 10) END);
SQL

# the same through a plain INSERT
cat >"$ES_TMP/insert.sql" <<'SQL'
\set r random(1, 100)
\set s random(1, 1000)
\set t random(1, 4)
\set x random(0, 2000)
\set y random(0, 2000)
INSERT INTO es.events (stream, event_type, data, metadata, user_id, username)
VALUES (
    CASE WHEN :r <= 50 THEN 'playbook-hot'
         WHEN :r <= 90 THEN 'playbook-' || :s
         ELSE 'image-' || (:s % 100) END,
    (ARRAY['module_add', 'module_move', 'tag_added', 'rating_set'])[:t],
    jsonb_build_object('moduleId', 'm' || :s,
                       'position', jsonb_build_object('x', :x, 'y', :y)),
    CASE WHEN :t = 3 THEN jsonb_build_object('source', 'insert', 'client', :client_id) END,
    CASE WHEN :t >= 3 THEN 'u' || (:s % 10) END,
    CASE WHEN :t = 4 THEN 'user ' || (:s % 10) END);
SQL

# run_pgbench LABEL ARGS...: run pgbench, check its own verdict, set
# PROCESSED to the number of transactions it processed.
run_pgbench() {
	local label=$1 out rc=0 failed expected
	shift
	out="$ES_TMP/pgbench-$label.out"
	log "$label: pgbench -n -c $CLIENTS -j $JOBS -t $TX $*"
	pgbench -n -c "$CLIENTS" -j "$JOBS" -t "$TX" "$@" "$DB" >"$out" 2>&1 || rc=$?
	sed 's/^/    /' "$out" | grep -vE '^\s*$' | head -n 40
	check "$label: pgbench exit status (0 = no client aborted)" "$rc" 0

	expected=$((CLIENTS * TX))
	PROCESSED=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	[ -n "$PROCESSED" ] || PROCESSED=0
	check "$label: transactions processed" "$PROCESSED" "$expected"

	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	check "$label: failed transactions" "${failed:-0}" 0
	if grep -qiE 'error|abort' "$out"; then
		fail "$label: pgbench output mentions errors:"
		grep -iE 'error|abort' "$out" | head -n 10 | sed 's/^/    /'
	else
		pass "$label: no error in pgbench output"
	fi
}

# ---- phase 1: es_append only, with a listener ----
start=$SECONDS
# psql shows notifications after each command: poll with SELECT 1 until
# the stop file appears
stopfile="$ES_TMP/stop-listener"
start_listener "$DB" "$ES_TMP/listener.out" "$stopfile" ||
	die "listener did not start"

run_pgbench phase1 -f "$ES_TMP/append.sql"
p1=$PROCESSED
touch "$stopfile"
wait "$listener" || fail "listener psql exited with an error"

# load the payloads and compare them with the stored events
sed -n 's/^Asynchronous notification "es_[a-z]*" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p' \
	"$ES_TMP/listener.out" >"$ES_TMP/payloads.txt"
check "phase1: notifications received" "$(wc -l <"$ES_TMP/payloads.txt")" "$p1"
n=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" <<SQL
CREATE TEMP TABLE notes (n serial, payload text);
\copy notes (payload) FROM '$ES_TMP/payloads.txt' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
SELECT count(*) FROM (
    SELECT p->>'stream' AS stream, (p->>'sequence_number')::bigint AS sequence_number,
           (p->>'global_position')::bigint AS global_position, (p->>'event_id')::uuid AS event_id
      FROM (SELECT payload::jsonb AS p FROM notes) n
    EXCEPT
    SELECT stream, sequence_number, global_position, event_id FROM es.events) d;
SELECT count(*) FROM (
    SELECT (p->>'sequence_number')::bigint AS seq,
           lag((p->>'sequence_number')::bigint) OVER (PARTITION BY p->>'stream' ORDER BY n) AS prev
      FROM (SELECT n, payload::jsonb AS p FROM notes) n) s
 WHERE seq <> prev + 1;
SQL
)
check "phase1: notifications that match no stored event (stream, sequence, position, id)" "${n%%$'\n'*}" 0
check "phase1: notifications of a stream not received in sequence order 1, 2, 3..." "${n##*$'\n'}" 0
n=$(q "$DB" "SELECT count(*) FROM es.events")
check "phase1: stored events = successful transactions" "$n" "$p1"
log "phase1: $(q "$DB" "SELECT format('%s events in %s streams; hot stream version %s; %s image events',
        (SELECT count(*) FROM es.events), (SELECT count(*) FROM es.streams),
        es_version('playbook-hot'), (SELECT count(*) FROM es.events WHERE category = 'image'))")"
hot=$(q "$DB" "SELECT es_version('playbook-hot') BETWEEN $p1 * 40 / 100 AND $p1 * 60 / 100")
check "phase1: hot stream got 40..60% of the appends" "$hot" t
es_check_invariants "$DB" phase1
log "phase1 took $((SECONDS - start)) s"

# ---- phase 2: es_append and plain INSERT on the same streams ----
start=$SECONDS
run_pgbench phase2 -f "$ES_TMP/append.sql@1" -f "$ES_TMP/insert.sql@1"
p2=$PROCESSED
n=$(q "$DB" "SELECT count(*) FROM es.events")
check "phase2: stored events = successful transactions of both phases ($p1 + $p2)" "$n" $((p1 + p2))
n=$(q "$DB" "SELECT count(*) FROM es.events WHERE event_type IN ('tag_added', 'rating_set')")
if [ "$n" -gt 0 ]; then
	pass "phase2: plain INSERTs stored ($n of their events have INSERT-only types)"
else
	fail "phase2: no event from the INSERT script found"
fi
es_check_invariants "$DB" phase2
log "phase2 took $((SECONDS - start)) s"

# the hot stream's events interleave both doors and are still 1..n
n=$(q "$DB" "SELECT count(*) = max(sequence_number) AND count(*) = es_version('playbook-hot')
               FROM es.events WHERE stream = 'playbook-hot'")
check "hot stream: count = max(sequence_number) = es_version" "$n" t

# UPDATE / DELETE still refused after the load
if q "$DB" "DELETE FROM es.events WHERE stream = 'playbook-hot'" >/dev/null 2>&1; then
	fail "DELETE FROM es.events succeeded"
else
	pass "DELETE FROM es.events refused"
fi

es_finish
