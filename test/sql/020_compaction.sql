--
-- 020_compaction: removing events.  es_compact (up to the latest snapshot,
-- the state kept in es.removals, replays and reads after it, a second
-- compaction), es_retain (events older than a period, in every stream of a
-- category), es_delete_stream (events, snapshots and kept states gone,
-- appends refused), who may call them (EXECUTE), and es_verify on healthy
-- and on deliberately broken data (eventsourcing.maintenance).
-- Categories "ledger" (defined) and "ledgerfree" (no definitions); roles
-- regress_es_keeper and regress_es_clerk.
--
\i test/sql/include/expect_error.sql

-- expect_error for errors whose detail carries a time (a deleted stream):
-- the time is replaced by <time>
CREATE PROCEDURE pg_temp.expect_error_timed(query text)
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
    v_detail text;
    v_hint text;
BEGIN
    BEGIN
        EXECUTE query;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE,
                                v_message = MESSAGE_TEXT,
                                v_detail = PG_EXCEPTION_DETAIL,
                                v_hint = PG_EXCEPTION_HINT;
        RAISE NOTICE '%', regexp_replace(v_state || ': ' || v_message
            || coalesce(E'\n  detail: ' || nullif(v_detail, ''), '')
            || coalesce(E'\n  hint: ' || nullif(v_hint, ''), ''),
            '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+([+-][0-9:]+)?', '<time>', 'g');
        RETURN;
    END;
    RAISE NOTICE 'unexpected success: %', query;
END
$$;
-- only the SQLSTATE of an error
CREATE PROCEDURE pg_temp.expect_sqlstate(query text)
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
BEGIN
    BEGIN
        EXECUTE query;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
        RAISE NOTICE '%', v_state;
        RETURN;
    END;
    RAISE NOTICE 'unexpected success: %', query;
END
$$;

SET eventsourcing.snapshot_every = 0;

SELECT es_define('ledger', 'member_add',
                 '[{"op": "merge", "path": "", "value": {"members": {}}},
                   {"op": "absent", "path": "/members/{/id}"},
                   {"op": "add", "path": "/members/{/id}", "value": {"$data": "/info"}}]',
                 '{"type": "object", "required": ["id", "info"]}');
SELECT es_define('ledger', 'member_replace',
                 '[{"op": "replace", "path": "/members/{/id}", "value": {"$data": "/info"}}]',
                 '{"type": "object", "required": ["id", "info"]}');
SELECT es_define('ledger', 'member_remove',
                 '[{"op": "remove", "path": "/members/{/id}"}]',
                 '{"type": "object", "required": ["id"]}');

--
-- es_compact
--
-- ledger-1: eight events, each its own statement
SELECT sequence_number FROM es_append('ledger-1', 'member_add', '{"id": "a", "info": "Ann"}');
SELECT sequence_number FROM es_append('ledger-1', 'member_add', '{"id": "b", "info": "Bob"}');
SELECT sequence_number FROM es_append('ledger-1', 'member_replace', '{"id": "a", "info": "Anne"}');
SELECT sequence_number FROM es_append('ledger-1', 'member_add', '{"id": "c", "info": "Cid"}');
SELECT sequence_number FROM es_append('ledger-1', 'member_remove', '{"id": "b"}');
SELECT sequence_number FROM es_append('ledger-1', 'member_add', '{"id": "d", "info": "Dee"}');
-- no snapshot: nothing to compact
SELECT es_compact('ledger-1') AS no_snapshot;
SELECT count(*) AS removals FROM es.removals WHERE stream = 'ledger-1';
SELECT es_snapshot('ledger-1') AS snapshot;
SELECT sequence_number FROM es_append('ledger-1', 'member_replace', '{"id": "c", "info": "Cyd"}');
SELECT sequence_number FROM es_append('ledger-1', 'member_add', '{"id": "e", "info": "Eve"}');
-- a stream without events: nothing to compact
SELECT es_compact('ledger-99') AS empty_stream;

-- what there is before the compaction
CREATE TEMP TABLE l1_events AS SELECT * FROM es.events WHERE stream = 'ledger-1';
CREATE TEMP TABLE l1_states AS
SELECT s, es_replay('ledger-1', s) AS state FROM generate_series(0, 8) AS s;
CREATE TEMP TABLE l1_snapshot AS SELECT * FROM es.snapshots WHERE stream = 'ledger-1';
SELECT sequence_number FROM l1_snapshot;

BEGIN;
SELECT es_compact('ledger-1') AS removed;
CREATE TEMP TABLE l1_compaction AS SELECT pg_current_xact_id() AS xid, now() AS at;
COMMIT;

-- the audit row
SELECT stream, category, kind, first_sequence, last_sequence, events_removed,
       first_position IS NOT NULL AS has_first_position,
       last_position IS NOT NULL AS has_last_position,
       first_position = (SELECT global_position FROM l1_events WHERE sequence_number = 1) AS first_position_ok,
       last_position = (SELECT global_position FROM l1_events WHERE sequence_number = 6) AS last_position_ok,
       first_created_at = (SELECT created_at FROM l1_events WHERE sequence_number = 1) AS first_created_at_ok,
       last_created_at = (SELECT created_at FROM l1_events WHERE sequence_number = 6) AS last_created_at_ok,
       definitions_hash = (SELECT definitions_hash FROM l1_snapshot) AS definitions_hash_ok,
       state = (SELECT state FROM l1_states WHERE s = 6) AS state_is_replay_at_6,
       removed_by = current_user AS removed_by_me,
       removed_at = (SELECT at FROM l1_compaction) AS removed_at_ok,
       transaction_id = (SELECT xid FROM l1_compaction) AS transaction_id_ok
  FROM es.removals WHERE stream = 'ledger-1';
SELECT state FROM es.removals WHERE stream = 'ledger-1';
-- the snapshot it used is gone, the events up to it too
SELECT count(*) AS snapshots FROM es.snapshots WHERE stream = 'ledger-1';
SELECT sequence_number, event_type, data FROM es_read('ledger-1');
SELECT sequence_number FROM es_read('ledger-1', 2);
SELECT sequence_number FROM es_read('ledger-1', 7);
-- the version and every state from the base on are unchanged
SELECT es_version('ledger-1') AS version,
       (SELECT version FROM es.streams WHERE stream = 'ledger-1') AS streams_version;
SELECT es_replay('ledger-1') = (SELECT state FROM l1_states WHERE s = 8) AS head_unchanged;
SELECT s, es_replay('ledger-1', s) = state AS unchanged
  FROM l1_states WHERE s >= 6 ORDER BY s;
SELECT es_replay('ledger-1', 6) AS state_at_base;
-- Invalid input: the state before the base (55S01)
CALL pg_temp.expect_error($$SELECT es_replay('ledger-1', 5)$$);
-- Invalid input: the empty state before event 1 (55S01)
CALL pg_temp.expect_error($$SELECT es_replay('ledger-1', 0)$$);
-- Invalid input: a client behind the base cannot catch up by events (55S01)
CALL pg_temp.expect_error($$SELECT es_sync('ledger-1', 3)$$);
SELECT jsonb_array_length(es_sync('ledger-1', 6)->'events') AS synced_from_base;
-- es_replay_at: before event 6 was appended the state is gone; from then on
-- it is there
-- Invalid input: a time before event 1 (55S01); the message names the time
CALL pg_temp.expect_error($$SELECT es_replay_at('ledger-1', '2000-01-01 00:00:00+00')$$);
CALL pg_temp.expect_sqlstate($$SELECT es_replay_at('ledger-1', (SELECT created_at - interval '1 microsecond' FROM l1_events WHERE sequence_number = 1))$$);
-- Invalid input: a time just before event 6 (55S01): the state then was
-- the one after event 5, removed
CALL pg_temp.expect_sqlstate($$SELECT es_replay_at('ledger-1', (SELECT created_at - interval '1 microsecond' FROM l1_events WHERE sequence_number = 6))$$);
SELECT sequence_number,
       es_replay_at('ledger-1', created_at) = (SELECT state FROM l1_states WHERE s = sequence_number) AS at_event,
       es_replay_at('ledger-1', created_at + interval '1 microsecond')
           = (SELECT state FROM l1_states WHERE s = sequence_number) AS just_after
  FROM l1_events WHERE sequence_number >= 6 ORDER BY sequence_number;
SELECT es_replay_at('ledger-1', 'infinity') = es_replay('ledger-1') AS infinity_is_head;

-- appends continue the numbering
SELECT sequence_number, event_type FROM es_append('ledger-1', 'member_add', '{"id": "f", "info": "Fay"}');
SELECT es_version('ledger-1') AS version;
-- Invalid input: "f" exists now (the state after the base is used) (23S02)
CALL pg_temp.expect_error($$SELECT es_append('ledger-1', 'member_add', '{"id": "f", "info": "Fay"}')$$);
-- undo after the base works, at or before it does not
SELECT sequence_number, event_type, data->'patch' AS patch FROM es_undo('ledger-1', 9);
-- Invalid input: undo of a removed event (55S01)
CALL pg_temp.expect_error($$SELECT es_undo('ledger-1', 3)$$);
-- Invalid input: undo of the event at the base (55S01)
CALL pg_temp.expect_error($$SELECT es_undo('ledger-1', 6)$$);
SELECT es_replay('ledger-1') AS head;
-- compacting again without a newer snapshot removes nothing
SELECT es_compact('ledger-1') AS again;
SELECT count(*) AS removals FROM es.removals WHERE stream = 'ledger-1';
-- a snapshot made under other definitions is not used
SELECT es_define('ledger', 'member_note', '[]');
SELECT es_snapshot('ledger-1') AS snapshot_other_definitions;
DELETE FROM es.event_types WHERE category = 'ledger' AND event_type = 'member_note';
SELECT es_compact('ledger-1') AS under_other_definitions;
DELETE FROM es.snapshots WHERE stream = 'ledger-1';

-- a second compaction later moves the base
CREATE TEMP TABLE l1_states_2 AS
SELECT s, es_replay('ledger-1', s) AS state FROM generate_series(6, 10) AS s;
SELECT es_snapshot('ledger-1') AS snapshot;
SELECT es_compact('ledger-1') AS removed;
SELECT kind, first_sequence, last_sequence, events_removed,
       first_position = (SELECT global_position FROM l1_events WHERE sequence_number = first_sequence) AS first_position_ok,
       last_position IS NOT NULL AS has_last_position,
       state = (SELECT state FROM l1_states_2 WHERE s = last_sequence) AS state_is_replay_at_last
  FROM es.removals WHERE stream = 'ledger-1' ORDER BY last_sequence;
SELECT count(*) AS events_left FROM es.events WHERE stream = 'ledger-1';
SELECT es_version('ledger-1') AS version, es_replay('ledger-1') = (SELECT state FROM l1_states_2 WHERE s = 10) AS head_unchanged;
-- Invalid input: a state between the two bases (55S01)
CALL pg_temp.expect_error($$SELECT es_replay('ledger-1', 9)$$);
SELECT es_replay('ledger-1', 10) = es_replay('ledger-1') AS base_is_head;
SELECT sequence_number FROM es_append('ledger-1', 'member_remove', '{"id": "a"}');
SELECT es_replay('ledger-1') AS head;
SELECT * FROM es_verify('ledger-1');

--
-- Automatic snapshots, compaction with and without the state cache
--
SET eventsourcing.snapshot_every = 5;
-- ledger-2 and ledger-3: the same twelve events; snapshots after 5 and 10
INSERT INTO es.events (stream, event_type, data)
SELECT 'ledger-' || n, e.t, e.d
  FROM generate_series(2, 3) AS n,
       (SELECT i, CASE WHEN i % 3 = 0 THEN 'member_replace' ELSE 'member_add' END AS t,
               CASE WHEN i % 3 = 0 THEN jsonb_build_object('id', 'm' || (i - 1), 'info', i)
                    ELSE jsonb_build_object('id', 'm' || i, 'info', i) END AS d
          FROM generate_series(1, 12) AS i) AS e
 ORDER BY n, e.i;
RESET eventsourcing.snapshot_every;
SELECT stream, sequence_number FROM es.snapshots
 WHERE stream IN ('ledger-2', 'ledger-3') ORDER BY 1, 2;
CREATE TEMP TABLE l23_states AS
SELECT s, es_replay('ledger-2', s) AS state FROM generate_series(0, 12) AS s;
SELECT count(*) AS same_histories FROM l23_states WHERE state = es_replay('ledger-3', s);
-- ledger-2 compacted with the cache, ledger-3 without it
SELECT es_compact('ledger-2') AS removed_with_cache;
SET eventsourcing.state_cache_size = 0;
SELECT es_compact('ledger-3') AS removed_without_cache;
SELECT stream, kind, first_sequence, last_sequence, events_removed,
       state = (SELECT state FROM l23_states WHERE s = 10) AS state_is_replay_at_10
  FROM es.removals WHERE stream IN ('ledger-2', 'ledger-3') ORDER BY stream;
SELECT count(*) AS snapshots FROM es.snapshots WHERE stream IN ('ledger-2', 'ledger-3');
-- the same replays, without the cache ...
SELECT s, es_replay('ledger-2', s) = state AS ledger_2, es_replay('ledger-3', s) = state AS ledger_3
  FROM l23_states WHERE s >= 10 ORDER BY s;
RESET eventsourcing.state_cache_size;
-- ... and with it
SELECT s, es_replay('ledger-2', s) = state AS ledger_2, es_replay('ledger-3', s) = state AS ledger_3
  FROM l23_states WHERE s >= 10 ORDER BY s;
SELECT es_replay('ledger-3') AS head;
-- appends after it validate against the kept state, with and without cache
SELECT sequence_number FROM es_append('ledger-2', 'member_remove', '{"id": "m1"}');
SET eventsourcing.state_cache_size = 0;
SELECT sequence_number FROM es_append('ledger-3', 'member_remove', '{"id": "m1"}');
-- Invalid input: "m1" was removed (23S02)
CALL pg_temp.expect_error($$SELECT es_append('ledger-3', 'member_remove', '{"id": "m1"}')$$);
RESET eventsourcing.state_cache_size;
SELECT es_replay('ledger-2') = es_replay('ledger-3') AS same_heads;

--
-- es_compact: invalid calls
--
SELECT sequence_number FROM es_append('ledgerfree-1', 'member_add', '{"id": "a"}');
-- Invalid input: a category without definitions (55000)
CALL pg_temp.expect_error($$SELECT es_compact('ledgerfree-1')$$);
-- Invalid input: NULL stream (22004)
CALL pg_temp.expect_error($$SELECT es_compact(NULL)$$);
-- Invalid input: an invalid stream name (22023)
CALL pg_temp.expect_error($$SELECT es_compact('ledger')$$);

--
-- Who may remove events: EXECUTE is revoked from PUBLIC
--
CREATE ROLE regress_es_keeper;
CREATE ROLE regress_es_clerk;
SELECT r.rolname, p.proname, has_function_privilege(r.rolname, p.oid, 'EXECUTE') AS execute
  FROM pg_proc p, (VALUES ('regress_es_keeper'), ('regress_es_clerk')) AS r(rolname)
 WHERE p.proname IN ('es_compact', 'es_retain', 'es_delete_stream', 'es_verify')
 ORDER BY 1, 2;
SELECT sequence_number FROM es_append('ledger-p1', 'member_add', '{"id": "a", "info": 1}');
SELECT sequence_number FROM es_append('ledger-p1', 'member_add', '{"id": "b", "info": 2}');
SELECT es_snapshot('ledger-p1') AS snapshot;
SELECT sequence_number FROM es_append('ledger-p1', 'member_remove', '{"id": "a"}');
SELECT sequence_number FROM es_append('ledger-p2', 'member_add', '{"id": "a", "info": 1}');
SET ROLE regress_es_clerk;
-- Invalid input: es_compact without EXECUTE (42501)
CALL pg_temp.expect_error($$SELECT es_compact('ledger-p1')$$);
-- Invalid input: es_retain without EXECUTE (42501)
CALL pg_temp.expect_error($$SELECT es_retain('ledger', '7 days')$$);
-- Invalid input: es_delete_stream without EXECUTE (42501)
CALL pg_temp.expect_error($$SELECT es_delete_stream('ledger-p2')$$);
-- Invalid input: es_verify without SELECT on es.events (42501)
CALL pg_temp.expect_error($$SELECT * FROM es_verify()$$);
RESET ROLE;
-- nothing was removed
SELECT stream, count(*) AS events FROM es.events WHERE stream LIKE 'ledger-p%' GROUP BY 1 ORDER BY 1;
GRANT EXECUTE ON FUNCTION es_compact(text), es_retain(text, interval), es_delete_stream(text)
   TO regress_es_keeper;
-- EXECUTE is enough: the functions work as the owner of es.events
SET ROLE regress_es_keeper;
SELECT es_compact('ledger-p1') AS removed;
SELECT es_retain('ledger', '7 days') AS retained;
SELECT es_delete_stream('ledger-p2') AS deleted;
RESET ROLE;
SELECT stream, kind, first_sequence, last_sequence, events_removed, removed_by
  FROM es.removals WHERE stream LIKE 'ledger-p%' ORDER BY stream, last_sequence;
SELECT stream, count(*) AS events FROM es.events WHERE stream LIKE 'ledger-p%' GROUP BY 1 ORDER BY 1;
SELECT es_replay('ledger-p1') AS state;
-- the clerk still may not
SET ROLE regress_es_clerk;
-- Invalid input: es_compact without EXECUTE, after the grant to another role (42501)
CALL pg_temp.expect_error($$SELECT es_compact('ledger-p1')$$);
RESET ROLE;

--
-- es_retain
--
-- ledger-r1: five events, the first three ten days old; ledger-r2: three
-- events, all ten days old; ledger-r3: two events, one three days old
SELECT sequence_number FROM es_append_batch('ledger-r1', '[
    {"event_type": "member_add", "data": {"id": "a", "info": 1}},
    {"event_type": "member_add", "data": {"id": "b", "info": 2}},
    {"event_type": "member_replace", "data": {"id": "a", "info": 3}},
    {"event_type": "member_remove", "data": {"id": "b"}},
    {"event_type": "member_add", "data": {"id": "c", "info": 5}}]');
SELECT sequence_number FROM es_append_batch('ledger-r2', '[
    {"event_type": "member_add", "data": {"id": "x", "info": 1}},
    {"event_type": "member_add", "data": {"id": "y", "info": 2}},
    {"event_type": "member_remove", "data": {"id": "x"}}]');
SELECT sequence_number FROM es_append_batch('ledger-r3', '[
    {"event_type": "member_add", "data": {"id": "z", "info": 1}},
    {"event_type": "member_replace", "data": {"id": "z", "info": 2}}]');
SET eventsourcing.maintenance = on;
UPDATE es.events SET created_at = created_at - interval '10 days'
 WHERE (stream = 'ledger-r1' AND sequence_number <= 3) OR stream = 'ledger-r2';
UPDATE es.events SET created_at = created_at - interval '3 days'
 WHERE stream = 'ledger-r3' AND sequence_number = 1;
RESET eventsourcing.maintenance;
CREATE TEMP TABLE r_states AS
SELECT stream, s, es_replay(stream, s) AS state
  FROM es.streams, generate_series(0, version) AS s
 WHERE stream IN ('ledger-r1', 'ledger-r2', 'ledger-r3');
CREATE TEMP TABLE r_events AS SELECT * FROM es.events WHERE stream LIKE 'ledger-r%';
CREATE TEMP TABLE removals_before AS SELECT stream, last_sequence FROM es.removals;

SELECT es_retain('ledger', '7 days') AS removed;
-- one row per stream that had old events, nothing else removed
SELECT r.stream, r.kind, r.first_sequence, r.last_sequence, r.events_removed,
       r.first_position = (SELECT global_position FROM r_events e
                            WHERE e.stream = r.stream AND e.sequence_number = 1) AS first_position_ok,
       r.last_position = (SELECT global_position FROM r_events e
                           WHERE e.stream = r.stream AND e.sequence_number = r.last_sequence) AS last_position_ok,
       r.last_created_at = (SELECT created_at FROM r_events e
                             WHERE e.stream = r.stream AND e.sequence_number = r.last_sequence) AS last_created_at_ok,
       r.state = (SELECT state FROM r_states s WHERE s.stream = r.stream AND s.s = r.last_sequence) AS state_ok,
       r.removed_by = current_user AS removed_by_me
  FROM es.removals r
 WHERE NOT EXISTS (SELECT FROM removals_before b WHERE b.stream = r.stream AND b.last_sequence = r.last_sequence)
 ORDER BY r.stream;
SELECT stream, string_agg(sequence_number::text, ' ' ORDER BY sequence_number) AS events_left
  FROM es.events WHERE stream LIKE 'ledger-r%' GROUP BY stream ORDER BY stream;
SELECT stream, es_version(stream) AS version, es_replay(stream) = state AS state_kept
  FROM r_states s WHERE s = (SELECT version FROM es.streams v WHERE v.stream = s.stream) ORDER BY stream;
SELECT es_replay('ledger-r2') AS r2_state, es_replay('ledger-r2', 3) = es_replay('ledger-r2') AS base_is_head;
-- Invalid input: ledger-r1 before its new base (55S01)
CALL pg_temp.expect_error($$SELECT es_replay('ledger-r1', 2)$$);
-- the streams of the category without old events are untouched
SELECT count(*) AS other_streams_touched FROM es.removals r
 WHERE r.category = 'ledger' AND r.kind = 'retain' AND r.stream NOT IN ('ledger-r1', 'ledger-r2');
-- a second call finds nothing to remove
SELECT es_retain('ledger', '7 days') AS again;
-- a shorter period reaches ledger-r3's older event
SELECT es_retain('ledger', '2 days') AS two_days;
SELECT stream, kind, first_sequence, last_sequence, events_removed FROM es.removals
 WHERE stream = 'ledger-r3';
-- appending to a stream retained to nothing continues its numbering
SELECT sequence_number FROM es_append('ledger-r2', 'member_add', '{"id": "x", "info": 4}');
SELECT es_replay('ledger-r2') AS r2_state;
SELECT * FROM es_verify() WHERE stream LIKE 'ledger-r%';
-- Invalid input: a negative period (22023)
CALL pg_temp.expect_error($$SELECT es_retain('ledger', '-1 day')$$);
-- Invalid input: a period with a negative part (22023)
CALL pg_temp.expect_error($$SELECT es_retain('ledger', '1 mon -1 day')$$);
-- Invalid input: NULL category (22004)
CALL pg_temp.expect_error($$SELECT es_retain(NULL, '7 days')$$);
-- Invalid input: NULL period (22004)
CALL pg_temp.expect_error($$SELECT es_retain('ledger', NULL)$$);
-- Invalid input: a category without definitions (55000)
CALL pg_temp.expect_error($$SELECT es_retain('ledgerfree', '7 days')$$);
-- Invalid input: an invalid category (22023)
CALL pg_temp.expect_error($$SELECT es_retain('ledger-r1', '7 days')$$);

--
-- es_delete_stream
--
-- ledger-d1: compacted once, then a snapshot after the base
SELECT sequence_number FROM es_append('ledger-d1', 'member_add', '{"id": "a", "info": 1}');
SELECT sequence_number FROM es_append('ledger-d1', 'member_add', '{"id": "b", "info": 2}');
SELECT es_snapshot('ledger-d1') AS snapshot;
SELECT es_compact('ledger-d1') AS compacted;
SELECT sequence_number FROM es_append('ledger-d1', 'member_replace', '{"id": "a", "info": 3}');
SELECT sequence_number FROM es_append('ledger-d1', 'member_remove', '{"id": "b"}');
SELECT es_snapshot('ledger-d1') AS snapshot;
SELECT sequence_number FROM es_append('ledger-d1', 'member_add', '{"id": "c", "info": 5}');
CREATE TEMP TABLE d1_events AS SELECT * FROM es.events WHERE stream = 'ledger-d1';
SELECT (SELECT count(*) FROM es.snapshots WHERE stream = 'ledger-d1') AS snapshots,
       (SELECT count(*) FROM es.removals WHERE stream = 'ledger-d1' AND state IS NOT NULL) AS kept_states;

SELECT es_delete_stream('ledger-d1') AS deleted;
SELECT (SELECT count(*) FROM es.events WHERE stream = 'ledger-d1') AS events,
       (SELECT count(*) FROM es.snapshots WHERE stream = 'ledger-d1') AS snapshots,
       (SELECT count(*) FROM es.removals WHERE stream = 'ledger-d1' AND state IS NOT NULL) AS kept_states;
SELECT stream, category, version, deleted_at IS NOT NULL AS deleted,
       deleted_at = updated_at AS updated_then
  FROM es.streams WHERE stream = 'ledger-d1';
-- the compaction's row keeps everything but its state
SELECT kind, first_sequence, last_sequence, events_removed,
       first_position IS NOT NULL AND last_position IS NOT NULL AS has_positions,
       first_created_at IS NOT NULL AND last_created_at IS NOT NULL AS has_times,
       definitions_hash IS NULL AS no_hash, state IS NULL AS no_state,
       removed_by = current_user AS removed_by_me
  FROM es.removals WHERE stream = 'ledger-d1' ORDER BY last_sequence;
SELECT first_position = (SELECT global_position FROM d1_events WHERE sequence_number = 3) AS first_position_ok,
       last_position = (SELECT global_position FROM d1_events WHERE sequence_number = 5) AS last_position_ok,
       first_created_at = (SELECT created_at FROM d1_events WHERE sequence_number = 3) AS first_created_at_ok,
       last_created_at = (SELECT created_at FROM d1_events WHERE sequence_number = 5) AS last_created_at_ok
  FROM es.removals WHERE stream = 'ledger-d1' AND kind = 'delete';
-- Invalid input: es_append to a deleted stream (55S03)
CALL pg_temp.expect_error_timed($$SELECT es_append('ledger-d1', 'member_add', '{"id": "z", "info": 0}')$$);
-- Invalid input: es_append_batch to a deleted stream (55S03)
CALL pg_temp.expect_error_timed($$SELECT es_append_batch('ledger-d1', '[{"event_type": "member_add", "data": {"id": "z", "info": 0}}]')$$);
-- Invalid input: INSERT into a deleted stream (55S03)
CALL pg_temp.expect_error_timed($$INSERT INTO es.events (stream, event_type, data) VALUES ('ledger-d1', 'member_add', '{"id": "z", "info": 0}')$$);
-- Invalid input: es_replay of a deleted stream (55S03)
CALL pg_temp.expect_error($$SELECT es_replay('ledger-d1')$$);
-- Invalid input: es_replay of a deleted stream at 0 (55S03)
CALL pg_temp.expect_error($$SELECT es_replay('ledger-d1', 0)$$);
-- Invalid input: es_replay_at of a deleted stream (55S03)
CALL pg_temp.expect_error($$SELECT es_replay_at('ledger-d1', now())$$);
-- Invalid input: es_sync of a deleted stream (55S03)
CALL pg_temp.expect_error($$SELECT es_sync('ledger-d1', 0)$$);
-- Invalid input: es_snapshot of a deleted stream (55S03)
CALL pg_temp.expect_error($$SELECT es_snapshot('ledger-d1')$$);
-- Invalid input: es_compact of a deleted stream (55S03)
CALL pg_temp.expect_error($$SELECT es_compact('ledger-d1')$$);
-- Invalid input: es_undo in a deleted stream (55S03)
CALL pg_temp.expect_error($$SELECT es_undo('ledger-d1', 5)$$);
-- Invalid input: deleting it twice (55S03)
CALL pg_temp.expect_error($$SELECT es_delete_stream('ledger-d1')$$);
-- Invalid input: an unknown stream (42704)
CALL pg_temp.expect_error($$SELECT es_delete_stream('ledger-nope')$$);
-- Invalid input: NULL stream (22004)
CALL pg_temp.expect_error($$SELECT es_delete_stream(NULL)$$);
-- the error as a client sees it
\set VERBOSITY terse
SELECT es_append('ledger-d1', 'member_add', '{"id": "z", "info": 0}');
\set VERBOSITY default
-- es_replay_all skips it, es_read finds nothing
SELECT stream, version FROM es_replay_all('ledger') WHERE stream LIKE 'ledger-d%' OR stream LIKE 'ledger-p%' ORDER BY 1;
SELECT count(*) AS read FROM es_read('ledger-d1');
SELECT es_version('ledger-d1') AS version;
-- a stream whose events were all compacted away: nothing left to remove
SELECT sequence_number FROM es_append_batch('ledger-d2', '[
    {"event_type": "member_add", "data": {"id": "a", "info": 1}},
    {"event_type": "member_add", "data": {"id": "b", "info": 2}}]');
SELECT es_snapshot('ledger-d2') AS snapshot;
SELECT es_compact('ledger-d2') AS compacted;
SELECT es_delete_stream('ledger-d2') AS deleted;
SELECT kind, first_sequence, last_sequence, events_removed,
       first_position IS NULL AS no_first_position, state IS NULL AS no_state
  FROM es.removals WHERE stream = 'ledger-d2' ORDER BY last_sequence;
-- a deleted stream is healthy
SELECT * FROM es_verify() WHERE stream LIKE 'ledger-d%' OR stream LIKE 'ledger-p%';

--
-- es_verify: healthy data, then broken on purpose
--
SELECT * FROM es_verify() WHERE stream LIKE 'ledger%';
-- ledger-v1 .. ledger-v11: four events each
INSERT INTO es.events (stream, event_type, data)
SELECT 'ledger-v' || n, e.t, e.d::jsonb
  FROM generate_series(1, 11) AS n,
       (VALUES (1, 'member_add', '{"id": "a", "info": 1}'),
               (2, 'member_add', '{"id": "b", "info": 2}'),
               (3, 'member_replace', '{"id": "a", "info": 3}'),
               (4, 'member_add', '{"id": "c", "info": 4}')) AS e(i, t, d)
 ORDER BY n, e.i;
SELECT es_snapshot('ledger-v5') AS snapshot;
SELECT * FROM es_verify() WHERE stream LIKE 'ledger%';
-- ledger-v9: a snapshot at event 2 (written as es_snapshot would have),
-- compacted there; its events kept aside
INSERT INTO es.snapshots (stream, sequence_number, definitions_hash, state)
SELECT 'ledger-v9', 2, definitions_hash, es_replay('ledger-v9', 2)
  FROM es.snapshots WHERE stream = 'ledger-v5';
CREATE TEMP TABLE v9_events AS SELECT * FROM es.events WHERE stream = 'ledger-v9';
SELECT es_compact('ledger-v9') AS compacted;
-- ledger-v10: deleted, its events kept aside
CREATE TEMP TABLE v10_events AS SELECT * FROM es.events WHERE stream = 'ledger-v10';
SELECT es_delete_stream('ledger-v10') AS deleted;
SELECT * FROM es_verify() WHERE stream LIKE 'ledger%';

SET eventsourcing.maintenance = on;
SHOW eventsourcing.maintenance;
-- a gap
DELETE FROM es.events WHERE stream = 'ledger-v1' AND sequence_number = 2;
-- the first events missing
DELETE FROM es.events WHERE stream = 'ledger-v2' AND sequence_number <= 2;
-- the first event missing
DELETE FROM es.events WHERE stream = 'ledger-v11' AND sequence_number = 1;
-- a version that is not the last event
UPDATE es.streams SET version = 6 WHERE stream = 'ledger-v3';
-- an event changed so that it no longer applies
UPDATE es.events SET data = '{"id": "zz", "info": 3}'
 WHERE stream = 'ledger-v4' AND sequence_number = 3;
-- a snapshot that differs, and one beyond the events
UPDATE es.snapshots SET state = '{"bogus": true}' WHERE stream = 'ledger-v5';
INSERT INTO es.snapshots (stream, sequence_number, definitions_hash, state)
SELECT stream, 9, definitions_hash, state FROM es.snapshots WHERE stream = 'ledger-v5';
-- an event of another category
UPDATE es.events SET category = 'ledgerx' WHERE stream = 'ledger-v6' AND sequence_number = 2;
-- global positions out of order
UPDATE es.events SET global_position = -20003 WHERE stream = 'ledger-v7' AND sequence_number = 3;
-- events without a stream row
CREATE TEMP TABLE v8_stream AS SELECT * FROM es.streams WHERE stream = 'ledger-v8';
DELETE FROM es.streams WHERE stream = 'ledger-v8';
-- an event below the compaction base (restored as pg_restore would)
INSERT INTO es.events SELECT * FROM v9_events WHERE sequence_number = 2;
-- a deleted stream that has events again
INSERT INTO es.events SELECT * FROM v10_events;
RESET eventsourcing.maintenance;

-- every problem is a row; global positions are shown as <position>
SELECT stream, regexp_replace(problem, '\([0-9]+\)', '(<position>)') AS problem
  FROM es_verify() WHERE stream LIKE 'ledger%';
SELECT problem = format('event 3 has global position -20003, lower than event 2 (%s)',
                        (SELECT global_position FROM es.events
                          WHERE stream = 'ledger-v7' AND sequence_number = 2)) AS position_problem_ok
  FROM es_verify('ledger-v7');
-- one stream only
SELECT * FROM es_verify('ledger-v4');
SELECT * FROM es_verify('ledger-v8');
SELECT * FROM es_verify('ledger-v10');
SELECT * FROM es_verify('ledger-1');
-- the other streams are still healthy
SELECT count(*) AS problems_elsewhere FROM es_verify()
 WHERE stream LIKE 'ledger%' AND stream NOT LIKE 'ledger-v%';

--
-- eventsourcing.maintenance: superusers only; without it the event log
-- stays append-only
--
GRANT USAGE ON SCHEMA es TO regress_es_clerk;
GRANT SELECT, UPDATE, DELETE, TRUNCATE ON es.events TO regress_es_clerk;
SET ROLE regress_es_clerk;
-- Invalid input: eventsourcing.maintenance set by a non-superuser (42501)
CALL pg_temp.expect_error($$SET eventsourcing.maintenance = on$$);
-- Invalid input: UPDATE by a role with the privilege, without maintenance (55000)
CALL pg_temp.expect_error($$UPDATE es.events SET data = '{}' WHERE stream = 'ledger-v1'$$);
RESET ROLE;
-- a superuser's maintenance setting does not let another role through
SET eventsourcing.maintenance = on;
SET ROLE regress_es_clerk;
SHOW eventsourcing.maintenance;
-- Invalid input: UPDATE by a non-superuser in a maintenance session (42501)
CALL pg_temp.expect_error($$UPDATE es.events SET data = '{}' WHERE stream = 'ledger-v1'$$);
-- Invalid input: DELETE by a non-superuser in a maintenance session (42501)
CALL pg_temp.expect_error($$DELETE FROM es.events WHERE stream = 'ledger-v1'$$);
BEGIN;
-- Invalid input: TRUNCATE by a non-superuser in a maintenance session (42501)
CALL pg_temp.expect_error($$TRUNCATE es.events$$);
ROLLBACK;
RESET ROLE;
RESET eventsourcing.maintenance;
SHOW eventsourcing.maintenance;
-- without it, not even a superuser
-- Invalid input: UPDATE without maintenance (55000)
CALL pg_temp.expect_error($$UPDATE es.events SET data = '{}' WHERE stream = 'ledger-v1'$$);
-- Invalid input: DELETE without maintenance (55000)
CALL pg_temp.expect_error($$DELETE FROM es.events WHERE stream = 'ledger-v1'$$);
BEGIN;
-- Invalid input: TRUNCATE without maintenance (55000)
CALL pg_temp.expect_error($$TRUNCATE es.events$$);
ROLLBACK;
SELECT count(*) AS v_events FROM es.events WHERE stream LIKE 'ledger-v%';

--
-- Repair: the broken streams are removed
--
SET eventsourcing.maintenance = on;
DELETE FROM es.events WHERE stream LIKE 'ledger-v%';
RESET eventsourcing.maintenance;
DELETE FROM es.snapshots WHERE stream LIKE 'ledger-v%';
DELETE FROM es.removals WHERE stream LIKE 'ledger-v%';
DELETE FROM es.streams WHERE stream LIKE 'ledger-v%';
SELECT * FROM es_verify() WHERE stream LIKE 'ledger%';

DROP OWNED BY regress_es_keeper, regress_es_clerk;
DROP ROLE regress_es_keeper;
DROP ROLE regress_es_clerk;
RESET eventsourcing.snapshot_every;
