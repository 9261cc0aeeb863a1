#!/usr/bin/env bash
# test/shell/030_dump_restore.sh - pg_dump / restore of the event store.
#
# Database A gets events in two categories through every append door:
# es_append (with metadata, user ids, explicit event ids), a plain INSERT,
# es_append_batch, several events in one transaction, a large (TOASTed)
# event, non-ASCII text.  It is then copied four ways:
#   B  pg_dump A | psql B                  (plain format, COPY)
#   C  pg_dump -Fc A; pg_restore -d C
#   D  pg_dump --column-inserts A | psql D  (INSERT statements)
#   E  pg_dump -Fd A; pg_restore -j 2 -d E  (parallel restore)
#   Z  an empty store (extension, no events): pg_dump | psql
# Each copy must have: the same es.events rows (every column but
# transaction_id compared byte for byte, through md5 of the ordered rows),
# the same es.streams rows, the position sequence continuing; appends
# continue at version + 1 above every restored position; idempotent retries
# of restored event ids still return the stored event; UPDATE, DELETE,
# TRUNCATE refused; es_read, es_read_all, es_sync, es_version work.
#
# transaction_id: README "Backup and restore" documents that restored rows
# get the restoring transaction's id (the trigger rewrites it).  The suite
# checks that documented behaviour and reports, as an INFO line, whether
# es_read_all's order in the copy equals the original's (it differs when
# transactions interleaved; set ES_DUMP_STRICT_ORDER=1 to make that a
# failure).
# shellcheck source-path=SCRIPTDIR source=lib/common.bash
. "$(dirname "$0")/lib/common.bash"

export PGTZ=UTC
A="es_dump_a_$$"
STRICT_ORDER=${ES_DUMP_STRICT_ORDER:-0}

es_wait_ready 60 || die "server not ready on $PGHOST:$PGPORT"
es_create_db "$A"

# ---- the source database ----
psql -X -q -v ON_ERROR_STOP=1 -d "$A" >/dev/null <<'SQL'
-- playbook streams, one event per transaction, with every optional column
SELECT es_append('playbook-1', 'module_add',
                 '{"moduleId": "m1", "module": {"name": "ansible.builtin.copy", "params": {"src": "a", "dest": "/etc/a"}}, "position": {"x": 100, "y": 200}}',
                 metadata => '{"correlation_id": "c-1", "client": "web"}',
                 event_id => '11111111-1111-4111-8111-111111111111',
                 user_id => '1', username => 'alice');
SELECT es_append('playbook-1', 'module_move', '{"moduleId": "m1", "position": {"x": 300, "y": 120}}',
                 expected_version => 1, user_id => '2', username => 'bob');
SELECT es_append('playbook-2', 'module_add', '{"moduleId": "m1", "module": {"name": "ping"}}',
                 event_id => '22222222-2222-4222-8222-222222222222');
-- the other door
INSERT INTO es.events (stream, event_type, data, metadata, user_id, username, event_id)
VALUES ('playbook-1', 'module_delete', '{"moduleId": "m1"}', '{"reason": "cleanup"}', '1', 'alice',
        '33333333-3333-4333-8333-333333333333');
-- several events of several streams in one transaction
BEGIN;
SELECT es_append('playbook-3', 'module_add', '{"moduleId": "a"}');
SELECT es_append('image-9', 'image_added', '{"target_type": "image", "target_id": 9, "path": "x.jpg"}');
SELECT es_append('playbook-3', 'module_add', '{"moduleId": "b"}', user_id => 'u3');
COMMIT;
-- a batch with explicit ids, metadata and users
SELECT es_append_batch('image-7', '[
    {"event_type": "image_added", "data": {"target_type": "image", "target_id": 7, "path": "a.jpg"},
     "event_id": "77777777-7777-4777-8777-000000000001", "metadata": {"import": "batch-1"}},
    {"event_type": "tag_added", "data": {"target_type": "image", "target_id": 7, "tag": "sea"},
     "user_id": "u1", "username": "Zoë"},
    {"event_type": "rating_set", "data": {"target_type": "image", "target_id": 7, "rating": 5},
     "event_id": "77777777-7777-4777-8777-000000000003", "user_id": "u2"}
  ]'::jsonb, expected_version => 0);
SELECT es_append_batch('image-8', '[{"event_type": "collection_created", "data": {"name": "été 🌞", "tabs": "a\tb", "quote": "\"q\" \\\\ back"}}]');
-- a large event (TOASTed data)
SELECT es_append('image-7', 'edit_applied',
                 jsonb_build_object('target_type', 'image', 'target_id', 7,
                                    'history', (SELECT jsonb_agg(jsonb_build_object('step', i, 'op', md5(i::text)))
                                                  FROM generate_series(1, 3000) i)));
-- a few more, so versions are not all small
SELECT es_append('playbook-' || (i % 5), 'module_move',
                 jsonb_build_object('moduleId', 'm1', 'position', jsonb_build_object('x', i, 'y', i)))
  FROM generate_series(1, 40) i;
-- history (1.2): undo and redo events, a compacted stream, a deleted one
SELECT es_define('hist', 'set', '[{"op": "add", "path": "/{/k}", "value": {"$data": "/v"}}]');
SELECT es_append('hist-1', 'set', jsonb_build_object('k', 'k' || (i % 3), 'v', i), user_id => 'u' || (i % 2))
  FROM generate_series(1, 12) i;
SELECT es_undo_last('hist-1', 'u1'), es_undo_last('hist-1', 'u0'), es_redo_last('hist-1', 'u0');
SELECT es_snapshot('hist-1');
SELECT es_append('hist-1', 'set', '{"k": "k9", "v": 99}');
SELECT es_compact('hist-1');
SELECT es_append('hist-2', 'set', '{"k": "a", "v": 1}');
SELECT es_delete_stream('hist-2');
SQL
# two transactions that interleave: the first gets positions N and N+2, the
# second N+1 and commits first; es_read_all orders by (transaction_id,
# position), so A's order is N, N+2, N+1
{
	echo "BEGIN; SELECT es_append('playbook-6', 'module_add', '{\"moduleId\": \"i1\"}'); SELECT 'first';"
	sleep 2
	echo "SELECT es_append('playbook-7', 'module_add', '{\"moduleId\": \"i2\"}'); COMMIT;"
} | psql -X -q -At -v ON_ERROR_STOP=1 -d "$A" >"$ES_TMP/interleave.out" 2>&1 &
interleaver=$!
for _ in $(seq 1 50); do
	grep -q first "$ES_TMP/interleave.out" 2>/dev/null && break
	sleep 0.1
done
q "$A" "SELECT es_append('image-10', 'image_added', '{\"target_type\": \"image\", \"target_id\": 10}')" >/dev/null
wait "$interleaver" || die "interleaved appends failed: $(cat "$ES_TMP/interleave.out")"

log "source: $(q "$A" "SELECT format('%s events in %s streams, %s transactions',
        count(*), count(DISTINCT stream), count(DISTINCT transaction_id)) FROM es.events")"

# Fingerprints.  ROWS: every column but transaction_id; ORDER: es_read_all's
# order as a list of global positions.
SQL_ROWS="SELECT md5(string_agg((global_position, stream, category, sequence_number, event_id,
                                  event_type, data, metadata, user_id, username, created_at, db_role)::text,
                                 E'\n' ORDER BY global_position)) FROM es.events"
SQL_STREAMS="SELECT md5(string_agg(s::text, E'\n' ORDER BY stream)) FROM es.streams s"
SQL_ORDER="SELECT string_agg(global_position::text, ',') FROM es_read_all()"
SQL_COUNT="SELECT count(*) FROM es.events"
SQL_REMOVALS="SELECT md5(string_agg((stream, kind, first_sequence, last_sequence, events_removed, first_position,
                                      last_position, first_created_at, last_created_at, state, removed_by, removed_at)::text,
                                     E'\n' ORDER BY stream, kind)) FROM es.removals"
SQL_HIST="SELECT es_replay('hist-1')::text || '@' || es_version('hist-1')"
SQL_SEQ="SELECT last_value FROM es.events_global_position_seq"
SQL_RAWXID="SELECT md5(string_agg(transaction_id::text, ',' ORDER BY global_position)) FROM es.events"

A_ROWS=$(q "$A" "$SQL_ROWS")
A_STREAMS=$(q "$A" "$SQL_STREAMS")
A_ORDER=$(q "$A" "$SQL_ORDER")
A_COUNT=$(q "$A" "$SQL_COUNT")
A_REMOVALS=$(q "$A" "$SQL_REMOVALS")
A_HIST=$(q "$A" "$SQL_HIST")
A_SEQ=$(q "$A" "$SQL_SEQ")
A_XID=$(q "$A" "$SQL_RAWXID")
A_MAX=$(q "$A" "SELECT max(global_position) FROM es.events")
es_check_invariants "$A" "source A"

# restore_check LABEL DB XIDS: the checks on a restored copy.  XIDS: "one"
# if the rows were loaded by one COPY (one transaction), "many" for INSERTs.
restore_check() {
	local label=$1 db=$2 xids=$3 n got v xid

	check "$label: es.events row count" "$(q "$db" "$SQL_COUNT")" "$A_COUNT"
	check "$label: md5 of es.events rows (all columns but transaction_id)" "$(q "$db" "$SQL_ROWS")" "$A_ROWS"
	check "$label: md5 of es.streams rows" "$(q "$db" "$SQL_STREAMS")" "$A_STREAMS"
	check "$label: es.events_global_position_seq last_value" "$(q "$db" "$SQL_SEQ")" "$A_SEQ"
	check "$label: md5 of es.removals rows (all columns but transaction_id)" "$(q "$db" "$SQL_REMOVALS")" "$A_REMOVALS"
	check "$label: state and version of the compacted stream hist-1" "$(q "$db" "$SQL_HIST")" "$A_HIST"

	# documented: restored rows carry the restoring transaction's id, which
	# is committed and visible to es_read_all
	if [ "$xids" = one ]; then
		n=$(q "$db" "SELECT count(DISTINCT transaction_id) FROM es.events")
		check "$label: restored events share one transaction id (README: the restoring transaction's)" "$n" 1
	fi
	xid=$(q "$db" "SELECT count(*) FROM es.events
	                WHERE NOT (transaction_id < pg_snapshot_xmin(pg_current_snapshot())
	                           AND pg_xact_status(transaction_id) = 'committed')")
	check "$label: restored events whose transaction id is not a committed one of this cluster below the snapshot xmin" "$xid" 0
	if [ "$(q "$db" "$SQL_RAWXID")" = "$A_XID" ]; then
		echo "INFO: $label: transaction_id values are identical to A's"
	else
		echo "INFO: $label: transaction_id values differ from A's (rewritten on restore, as README documents)"
	fi
	got=$(q "$db" "$SQL_ORDER")
	if [ "$got" = "$A_ORDER" ]; then
		pass "$label: es_read_all order equals A's"
	elif [ "$STRICT_ORDER" = 1 ]; then
		fail "$label: es_read_all order differs from A's: A=[$A_ORDER] $label=[$got]"
	else
		echo "INFO: $label: es_read_all order differs from A's (a reader continuing from a position of A can skip or repeat events): A=[$A_ORDER] $label=[$got]"
	fi

	es_check_invariants "$db" "$label"

	# reads
	check "$label: es_read('playbook-1') count = es_version('playbook-1')" \
		"$(q "$db" "SELECT count(*) = es_version('playbook-1') FROM es_read('playbook-1')")" t
	check "$label: es_read('image-7') sequence numbers" \
		"$(q "$db" "SELECT string_agg(sequence_number::text, ',') FROM es_read('image-7')")" "1,2,3,4"
	check "$label: es_read_all(0, 5, 'image') returns image events" \
		"$(q "$db" "SELECT count(*) FILTER (WHERE category = 'image') || '/' || count(*) FROM es_read_all(0, 5, 'image')")" "5/5"
	check "$label: es_sync('image-7', 2) current_sequence and events" \
		"$(q "$db" "SELECT (s->>'current_sequence') || '/' || jsonb_array_length(s->'events') FROM es_sync('image-7', 2) s")" "4/2"
	check "$label: large event restored intact" \
		"$(q "$db" "SELECT jsonb_array_length(data->'history') FROM es.events WHERE stream = 'image-7' AND event_type = 'edit_applied'")" 3000

	# idempotent retry of a restored event id returns the stored event
	got=$(q "$db" "SELECT sequence_number, global_position FROM es_append('playbook-1', 'module_add',
	        '{\"moduleId\": \"m1\", \"module\": {\"name\": \"ansible.builtin.copy\", \"params\": {\"src\": \"a\", \"dest\": \"/etc/a\"}}, \"position\": {\"x\": 100, \"y\": 200}}',
	        metadata => '{\"correlation_id\": \"c-1\", \"client\": \"web\"}',
	        event_id => '11111111-1111-4111-8111-111111111111', user_id => '1', username => 'alice')")
	check "$label: retry of a restored event id returns the stored event (sequence|position)" "$got" "1|1"
	check "$label: ... and appends nothing" "$(q "$db" "$SQL_COUNT")" "$A_COUNT"
	got=$(psql -X -At -d "$db" -c "\\set VERBOSITY sqlstate" \
		-c "SELECT es_append('playbook-1', 'other', '{}', event_id => '11111111-1111-4111-8111-111111111111')" 2>&1 || true)
	check "$label: reuse of a restored event id with other content" "$got" "ERROR:  23S01"
	got=$(psql -X -At -d "$db" -c "\\set VERBOSITY sqlstate" \
		-c "SELECT es_append('hist-2', 'set', '{\"k\": \"b\", \"v\": 2}')" 2>&1 || true)
	check "$label: append to the deleted stream hist-2" "$got" "ERROR:  55S03"
	got=$(psql -X -At -d "$db" -c "\\set VERBOSITY sqlstate" \
		-c "SELECT es_replay('hist-1', 1)" 2>&1 || true)
	check "$label: replay before the compaction of hist-1" "$got" "ERROR:  55S01"
	check "$label: es_undo of the event after the compaction of hist-1" \
		"$(q "$db" "SELECT sequence_number || ' ' || event_type FROM es_undo('hist-1', 16)")" "17 undo"
	check "$label: ... reverts it (k9 gone)" "$(q "$db" "SELECT es_replay('hist-1') ? 'k9'")" f

	# appends continue at version + 1 above every restored position
	for s in playbook-1 playbook-3 image-7 image-8; do
		v=$(q "$db" "SELECT es_version('$s')")
		got=$(q "$db" "SELECT sequence_number, global_position > $A_MAX FROM es_append('$s', 'after_restore', '{}')")
		check "$label: es_append to $s gets version+1 ($((v + 1))) and a position above $A_MAX" "$got" "$((v + 1))|t"
	done
	v=$(q "$db" "SELECT es_version('playbook-2')")
	got=$(q "$db" "INSERT INTO es.events (stream, event_type, data) VALUES ('playbook-2', 'after_restore', '{}')
	               RETURNING sequence_number, global_position > $A_MAX")
	check "$label: plain INSERT into playbook-2 gets version+1 ($((v + 1))) and a new position" "$got" "$((v + 1))|t"
	got=$(q "$db" "SELECT sequence_number FROM es_append_batch('image-new', '[{\"event_type\": \"a\", \"data\": {}}, {\"event_type\": \"b\", \"data\": {}}]', 0)" | tr '\n' ',')
	check "$label: es_append_batch on a new stream" "$got" "1,2,"
	check "$label: es_read_all sees restored and new events (7 appends and 1 undo)" \
		"$(q "$db" "SELECT count(*) FROM es_read_all()")" "$((A_COUNT + 8))"
	check "$label: es_version(playbook-1) after the append" \
		"$(q "$db" "SELECT es_version('playbook-1') = (SELECT version FROM es.streams WHERE stream = 'playbook-1')")" t
	es_check_invariants "$db" "$label after new appends"

	# still append-only
	for stmt in "UPDATE es.events SET data = '{}'" "DELETE FROM es.events" "TRUNCATE es.events"; do
		got=$(psql -X -At -d "$db" -c "\\set VERBOSITY sqlstate" -c "$stmt" 2>&1 || true)
		check "$label: $stmt refused" "$got" "ERROR:  55000"
	done

	# a role that does not own es.events cannot pass off rows as restored
	q "$db" "DO \$\$ BEGIN
	           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'es_dump_app') THEN
	             CREATE ROLE es_dump_app;
	           END IF; END \$\$;
	         GRANT USAGE ON SCHEMA es TO es_dump_app;
	         GRANT SELECT, INSERT ON es.events TO es_dump_app" >/dev/null
	got=$(psql -X -q -At -d "$db" -c "\\set VERBOSITY sqlstate" -c "SET ROLE es_dump_app" \
		-c "INSERT INTO es.events (global_position, stream, category, sequence_number, event_id, event_type, data, created_at, transaction_id)
		    VALUES (999999, 'playbook-1', 'playbook', 99, gen_random_uuid(), 'forged', '{}', now(), '1')" 2>&1 || true)
	check "$label: non-owner INSERT with a transaction_id refused" "$got" "ERROR:  428C9"
	got=$(psql -X -q -At -d "$db" -c "SET ROLE es_dump_app" \
		-c "SELECT sequence_number FROM es_append('playbook-1', 'by_app', '{}')" 2>&1 || true)
	check "$label: non-owner role with INSERT appends normally (sequence number)" "$got" "$(q "$db" "SELECT es_version('playbook-1')")"
	q "$db" "REVOKE ALL ON es.events FROM es_dump_app; REVOKE ALL ON SCHEMA es FROM es_dump_app" >/dev/null
}

# new_db NAME: an empty database to restore into (no extension yet)
new_db() {
	dropdb --if-exists "$1" >/dev/null 2>&1 || true
	createdb "$1" || die "createdb $1 failed"
	ES_DBS+=("$1")
}

# restore_step LABEL CMD...: run a restore command, FAIL with its output
restore_step() {
	local label=$1 out="$ES_TMP/restore-$1.out"
	shift
	if "$@" >"$out" 2>&1; then
		pass "$label: restore command succeeded: $*"
		return 0
	fi
	fail "$label: restore command failed: $*"
	sed 's/^/    /' "$out" | head -n 30
	return 1
}

# ---- B: plain format through psql, with a listener on B ----
B="es_dump_b_$$"
new_db "$B"
pg_dump -d "$A" -f "$ES_TMP/a.sql" || die "pg_dump (plain) of A failed"
log "plain dump: $(grep -c . "$ES_TMP/a.sql") lines; $(grep -E '^(COPY|SELECT pg_catalog.setval|CREATE EXTENSION)' "$ES_TMP/a.sql" | tr '\n' ';')"
stopfile="$ES_TMP/stop-listener"
start_listener "$B" "$ES_TMP/listener.out" "$stopfile" ||
	die "listener did not start"
if restore_step B psql -X -q -v ON_ERROR_STOP=1 -d "$B" -f "$ES_TMP/a.sql"; then
	sleep 0.5
	n=$(grep -c '^Asynchronous notification' "$ES_TMP/listener.out" || true)
	check "B: notifications sent by the restore" "$n" 0
	q "$B" "SELECT es_append('playbook-1', 'after_restore_notify', '{}')" >/dev/null
	touch "$stopfile"
	wait "$listener" || true
	n=$(grep -c '^Asynchronous notification "es_playbook"' "$ES_TMP/listener.out" || true)
	check "B: notifications after one append following the restore" "$n" 1
	# undo that append's effect on the later count checks: use a fresh copy
	dropdb --force "$B"
	createdb "$B"
	restore_step B2 psql -X -q -v ON_ERROR_STOP=1 -d "$B" -f "$ES_TMP/a.sql" && restore_check B "$B" one
else
	touch "$stopfile"
	wait "$listener" || true
fi

# ---- C: custom format, pg_restore ----
C="es_dump_c_$$"
new_db "$C"
pg_dump -Fc -d "$A" -f "$ES_TMP/a.dump" || die "pg_dump -Fc of A failed"
restore_step C pg_restore --exit-on-error -d "$C" "$ES_TMP/a.dump" && restore_check C "$C" one

# ---- D: INSERT statements ----
D="es_dump_d_$$"
new_db "$D"
pg_dump --column-inserts -d "$A" -f "$ES_TMP/a-inserts.sql" || die "pg_dump --column-inserts of A failed"
restore_step D psql -X -q -v ON_ERROR_STOP=1 -d "$D" -f "$ES_TMP/a-inserts.sql" && restore_check D "$D" many

# ---- E: directory format, parallel pg_restore ----
E="es_dump_e_$$"
new_db "$E"
pg_dump -Fd -j 2 -d "$A" -f "$ES_TMP/a.dir" || die "pg_dump -Fd of A failed"
restore_step E pg_restore --exit-on-error -j 2 -d "$E" "$ES_TMP/a.dir" && restore_check E "$E" one

# ---- dump of a restored copy restores too (C -> F) ----
F="es_dump_f_$$"
new_db "$F"
q "$C" "SELECT 1" >/dev/null
if pg_dump -Fc -d "$C" -f "$ES_TMP/c.dump" && restore_step F pg_restore --exit-on-error -d "$F" "$ES_TMP/c.dump"; then
	SQL_ALL="SELECT md5(string_agg((global_position, stream, category, sequence_number, event_id, event_type,
	                                data, metadata, user_id, username, created_at)::text, E'\n' ORDER BY global_position))
	           FROM es.events"
	check "F (dump of restored C): md5 of es.events rows equals C's" "$(q "$F" "$SQL_ALL")" "$(q "$C" "$SQL_ALL")"
	check "F: md5 of es.streams rows equals C's" "$(q "$F" "$SQL_STREAMS")" "$(q "$C" "$SQL_STREAMS")"
	es_check_invariants "$F" F
fi

# ---- Z: an empty store ----
Z0="es_dump_z0_$$"
Z="es_dump_z_$$"
es_create_db "$Z0"
new_db "$Z"
if pg_dump -d "$Z0" -f "$ES_TMP/z.sql" && restore_step Z psql -X -q -v ON_ERROR_STOP=1 -d "$Z" -f "$ES_TMP/z.sql"; then
	got=$(q "$Z" "SELECT sequence_number, global_position FROM es_append('playbook-1', 'first', '{}')")
	check "Z: first append in a restored empty store" "$got" "1|1"
fi

es_finish
