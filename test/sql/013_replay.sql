--
-- 013_replay: es_replay (at the head, at every sequence number, its
-- limits), es_replay_at (by time), es_replay_all (by category); events of
-- types without definition change nothing; $event references; a stored
-- event that no longer applies under new definitions; the same results
-- without the state cache.  Category "rt".
--
\i test/sql/include/expect_error.sql

-- before the category has definitions: anything is accepted, and nothing
-- of it is state
SELECT sequence_number FROM es_append('rt-1', 'legacy', '{"k": "a", "v": 0}');
SELECT sequence_number FROM es_append('rt-old', 'legacy', '{"anything": true}');
SELECT es_replay('rt-1') AS undefined_category;

SELECT es_define('rt', 'set',
                 '[{"op": "merge", "path": "", "value": {"vals": {}}},
                   {"op": "add", "path": "/vals/{/k}", "value": {"$data": "/v"}}]');
SELECT es_define('rt', 'del', '[{"op": "remove", "path": "/vals/{/k}"}]');
SELECT es_define('rt', 'push',
                 '[{"op": "merge", "path": "", "value": {"log": {}}},
                   {"op": "add", "path": "/log/{/k}", "value": []},
                   {"op": "add", "path": "/log/{/k}/-", "value": {"$data": "/v"}}]');
SELECT es_define('rt', 'stamp',
                 '[{"op": "add", "path": "/last",
                    "value": {"seq": {"$event": "sequence_number"},
                              "user_id": {"$event": "user_id"},
                              "username": {"$event": "username"},
                              "type": {"$event": "event_type"},
                              "at": {"$event": "created_at"},
                              "client": {"$meta": "/client"},
                              "data": {"$data": ""},
                              "literal": {"$literal": {"$event": "user_id"}}}}]');

-- rt-1: event 1 is of an undefined type; the others build the state; each
-- append is its own statement, so that created_at differs
SELECT sequence_number FROM es_append('rt-1', 'set', '{"k": "a", "v": 1}');
SELECT sequence_number FROM es_append('rt-1', 'set', '{"k": "b", "v": [1, 2]}');
SELECT sequence_number FROM es_append('rt-1', 'set', '{"k": "a", "v": {"x": null}}');
SELECT sequence_number FROM es_append('rt-1', 'del', '{"k": "b"}');
SELECT sequence_number FROM es_append('rt-1', 'push', '{"k": "p", "v": "one"}');
SELECT sequence_number FROM es_append('rt-1', 'stamp', '{"note": "é~/"}',
                                      metadata => '{"client": "cli"}',
                                      user_id => 'u1', username => 'alice');
SELECT sequence_number FROM es_append('rt-1', 'set', '{"k": "c~/d", "v": true}');
-- rt-2 and rt-10: more streams of the category
SELECT sequence_number, event_type
  FROM es_append_batch('rt-2', '[{"event_type": "set", "data": {"k": "z", "v": 26}},
                                 {"event_type": "stamp", "data": {}, "metadata": {"client": "web"}}]');
SELECT sequence_number FROM es_append('rt-10', 'set', '{"k": "ten", "v": 10}');

--
-- es_replay
--
-- at the head
SELECT es_replay('rt-1') #- '{last,at}' AS head;
SELECT es_replay('rt-1', NULL) = es_replay('rt-1') AS null_is_head,
       es_replay('rt-1', es_version('rt-1')) = es_replay('rt-1') AS version_is_head;
-- time travel: the state after each event, 0 is the empty state
SELECT s AS at_sequence, es_replay('rt-1', s) - 'last' AS state
  FROM generate_series(0, es_version('rt-1')) AS s ORDER BY s;
-- the $event, $meta, $data and $literal references of the stamp event
SELECT jsonb_pretty((es_replay('rt-1', 7)->'last') - 'at') AS last;
SELECT (es_replay('rt-1')->'last'->>'at')::timestamptz = e.created_at AS at_is_created_at
  FROM es.events e WHERE e.stream = 'rt-1' AND e.sequence_number = 7;
-- null user_id and username from an event without them
SELECT (es_replay('rt-2')->'last') - 'at' AS last;
-- a stream that does not exist is empty
SELECT es_replay('rt-99') AS unknown_stream, es_replay('rt-99', 0) AS unknown_at_0;
-- Invalid input: beyond the head (22023)
CALL pg_temp.expect_error($$SELECT es_replay('rt-1', 9)$$);
-- Invalid input: beyond the head of an empty stream (22023)
CALL pg_temp.expect_error($$SELECT es_replay('rt-99', 1)$$);
-- Invalid input: a negative sequence number (22023)
CALL pg_temp.expect_error($$SELECT es_replay('rt-1', -1)$$);
-- Invalid input: NULL stream (22004)
CALL pg_temp.expect_error($$SELECT es_replay(NULL)$$);
-- Invalid input: NULL stream and a sequence number (22004)
CALL pg_temp.expect_error($$SELECT es_replay(NULL, 1)$$);
-- Invalid input: an invalid stream name (22023)
CALL pg_temp.expect_error($$SELECT es_replay('rt')$$);
-- the same error as a client sees it
SELECT es_replay('rt-1', 9);

--
-- es_replay_at: by time, with the times of the stored events
--
CREATE TEMP TABLE rt1_events AS
SELECT sequence_number, created_at FROM es.events WHERE stream = 'rt-1';
-- before the first event: empty
SELECT es_replay_at('rt-1', min(created_at) - interval '1 microsecond') AS before_first
  FROM rt1_events;
-- exactly at an event's time: that event included; just before it: not
SELECT sequence_number,
       es_replay_at('rt-1', created_at) = es_replay('rt-1', sequence_number) AS at_event,
       es_replay_at('rt-1', created_at - interval '1 microsecond')
           = es_replay('rt-1', sequence_number - 1) AS just_before
  FROM rt1_events ORDER BY sequence_number;
-- far in the future: the head
SELECT es_replay_at('rt-1', 'infinity') = es_replay('rt-1') AS infinity_is_head,
       es_replay_at('rt-1', now() + interval '100 years') = es_replay('rt-1') AS future_is_head;
-- a stream that does not exist; NULL time
SELECT es_replay_at('rt-99', now()) AS unknown_stream;
-- Invalid input: NULL time (22004)
CALL pg_temp.expect_error($$SELECT es_replay_at('rt-1', NULL)$$);
-- Invalid input: NULL stream (22004)
CALL pg_temp.expect_error($$SELECT es_replay_at(NULL, now())$$);

--
-- es_replay_all: every stream of the category, ordered by stream
--
SELECT stream, version, state - 'last' AS state, state ? 'last' AS stamped
  FROM es_replay_all('rt');
SELECT count(*) = (SELECT count(*) FROM es.streams WHERE category = 'rt') AS all_streams,
       bool_and(state = es_replay(stream)) AS same_as_replay,
       bool_and(version = es_version(stream)) AS same_versions
  FROM es_replay_all('rt');
-- a category without streams, a category without definitions
SELECT count(*) AS no_streams FROM es_replay_all('rtnone');
SELECT sequence_number FROM es_append('rtfree-1', 'set', '{"k": "a", "v": 1}');
SELECT stream, version, state FROM es_replay_all('rtfree');
-- Invalid input: NULL category (22004)
CALL pg_temp.expect_error($$SELECT * FROM es_replay_all(NULL)$$);
-- Invalid input: an invalid category (22023)
CALL pg_temp.expect_error($$SELECT * FROM es_replay_all('rt-1')$$);

--
-- The same results without the state cache
--
CREATE TEMP TABLE with_cache AS
SELECT e.stream, s, es_replay(e.stream, s) AS state
  FROM (VALUES ('rt-1'), ('rt-2'), ('rt-10'), ('rt-old')) AS e(stream),
       generate_series(0, es_version(e.stream)) AS s;
SET eventsourcing.state_cache_size = 0;
SHOW eventsourcing.state_cache_size;
SELECT count(*) AS replays,
       count(*) FILTER (WHERE es_replay(stream, s) IS DISTINCT FROM state) AS mismatches
  FROM with_cache;
SELECT es_replay('rt-1') - 'last' AS head_without_cache;
SELECT count(*) FILTER (WHERE state IS DISTINCT FROM es_replay(stream)) AS all_mismatches
  FROM es_replay_all('rt');
-- appends validate without the cache too
-- Invalid input: "b" was deleted by event 5 (23S02)
CALL pg_temp.expect_error($$SELECT es_append('rt-1', 'del', '{"k": "b"}')$$);
SELECT sequence_number FROM es_append('rt-1', 'del', '{"k": "c~/d"}');
RESET eventsourcing.state_cache_size;
SELECT sequence_number FROM es_append('rt-1', 'set', '{"k": "c~/d", "v": false}');
SELECT es_replay('rt-1') - 'last' AS head;

--
-- A definition replaced so that a stored event no longer applies: replay
-- raises 23S02 naming the stream and the event
--
SELECT es_define('rt', 'del', '[{"op": "remove", "path": "/gone/{/k}"}]');
-- Invalid input: event 5 of rt-1 (del) no longer applies (23S02)
CALL pg_temp.expect_error($$SELECT es_replay('rt-1')$$);
-- Invalid input: also when replaying at that event (23S02)
CALL pg_temp.expect_error($$SELECT es_replay('rt-1', 5)$$);
-- Invalid input: es_replay_all meets the same event (23S02)
CALL pg_temp.expect_error($$SELECT * FROM es_replay_all('rt')$$);
-- Invalid input: an append to that stream needs its state (23S02)
CALL pg_temp.expect_error($$SELECT es_append('rt-1', 'set', '{"k": "q", "v": 1}')$$);
-- the state before that event still replays, and other streams are fine
SELECT es_replay('rt-1', 4) AS before_the_event, es_replay('rt-10') AS other_stream;
-- the error as a client sees it
SELECT es_replay('rt-1');
-- a definition that ignores a field: the state changes with it
SELECT es_define('rt', 'del', '[]');
SELECT es_replay('rt-1') - 'last' AS del_ignored;
-- the original definition: the original state
SELECT es_define('rt', 'del', '[{"op": "remove", "path": "/vals/{/k}"}]');
SELECT es_replay('rt-1') - 'last' AS head;
-- removing a definition: its events change nothing in the replay
DELETE FROM es.event_types WHERE category = 'rt' AND event_type = 'push';
SELECT es_replay('rt-1') ? 'log' AS has_log;
SELECT es_define('rt', 'push',
                 '[{"op": "merge", "path": "", "value": {"log": {}}},
                   {"op": "add", "path": "/log/{/k}", "value": []},
                   {"op": "add", "path": "/log/{/k}/-", "value": {"$data": "/v"}}]');
SELECT es_replay('rt-1')->'log' AS log;

--
-- A redefinition rolled back is forgotten
--
BEGIN;
SAVEPOINT s;
SELECT es_define('rt', 'del', '[]');
-- "nothing" does not exist, but del does nothing now
SELECT sequence_number FROM es_append('rt-10', 'del', '{"k": "nothing"}');
ROLLBACK TO SAVEPOINT s;
-- Invalid input: del removes again, and "nothing" does not exist (23S02)
CALL pg_temp.expect_error($$SELECT es_append('rt-10', 'del', '{"k": "nothing"}')$$);
ROLLBACK;
-- definitions deleted and the deletion rolled back: validated again
BEGIN;
DELETE FROM es.event_types WHERE category = 'rt';
SELECT sequence_number FROM es_append('rt-10', 'anything', '{}');
SELECT es_replay('rt-10') AS without_definitions;
ROLLBACK;
-- Invalid input: "anything" is not defined (42S01)
CALL pg_temp.expect_error($$SELECT es_append('rt-10', 'anything', '{}')$$);
SELECT es_version('rt-10') AS version, es_replay('rt-10') AS state;
