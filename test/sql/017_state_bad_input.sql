--
-- 017_state_bad_input: hostile sizes and shapes for the state engine.
-- Data nested 10,000 deep, a state of more than 10 MB, non-object data, a
-- deep or huge definition, a state that would nest deeper than 1000
-- levels, NULL arguments.  Categories "deep" (defined) and "deepfree" (no
-- definitions).
--
\i test/sql/include/expect_error.sql

-- error_size(query): like expect_error, for errors about huge input: the
-- SQLSTATE, the sizes of message and detail and their beginnings
CREATE PROCEDURE pg_temp.error_size(query text)
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
    v_detail text;
BEGIN
    BEGIN
        EXECUTE query;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE,
                                v_message = MESSAGE_TEXT,
                                v_detail = PG_EXCEPTION_DETAIL;
        RAISE NOTICE '%: message of % bytes: %', v_state, octet_length(v_message), left(v_message, 60);
        RAISE NOTICE 'detail of % bytes: %', coalesce(octet_length(v_detail), 0), left(v_detail, 60);
        RETURN;
    END;
    RAISE NOTICE 'unexpected success';
END
$$;

SELECT es_define('deep', 'put',
                 '[{"op": "merge", "path": "", "value": {"d": {}}},
                   {"op": "add", "path": "/d/{/k}", "value": {"$data": "/v"}}]');
SELECT es_define('deep', 'wrap',
                 '[{"op": "add", "path": "/d/{/k}", "value": {"w": {"$data": "/v"}}}]');
SELECT es_define('deep', 'cp',
                 '[{"op": "copy", "from": "/d/{/k}", "path": "/d/{/to}/x"}]');
SELECT es_define('deep', 'mput',
                 '[{"op": "merge", "path": "/d/{/k}", "value": {"$data": "/v"}}]');

--
-- Data nested 10,000 levels deep
--
CREATE TEMP TABLE deep_data AS
SELECT ('{"k": "a", "v": ' || repeat('[', 10000) || repeat(']', 10000) || '}')::jsonb AS data;
SELECT length(data::text) AS deep_data_length FROM deep_data;
-- Invalid input: es_append of it in a defined category (54000)
CALL pg_temp.expect_error($$SELECT es_append('deep-1', 'put', data) FROM deep_data$$);
-- Invalid input: INSERT of it in a defined category (54000)
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) SELECT 'deep-1', 'put', data FROM deep_data$$);
-- Invalid input: as the second element of a batch in a defined category (54000)
CALL pg_temp.expect_error($$SELECT es_append_batch('deep-1', jsonb_build_array(jsonb_build_object('event_type', 'put', 'data', '{"k": "b", "v": 1}'::jsonb), jsonb_build_object('event_type', 'put', 'data', data))) FROM deep_data$$);
-- Invalid input: as metadata in a defined category (54000)
CALL pg_temp.expect_error($$SELECT es_append('deep-1', 'put', '{"k": "b", "v": 1}', metadata => data) FROM deep_data$$);
SELECT es_version('deep-1') AS version;
-- a category without definitions stores it as before
SELECT sequence_number, length(e.data::text) AS data_length
  FROM deep_data, es_append('deepfree-1', 'put', deep_data.data) AS e;
SELECT es_replay('deepfree-1') AS state;

--
-- The state is at most 1000 levels deep.  /d/a is 2 levels below the root,
-- so the value put there may be 998 levels deep
--
SELECT sequence_number
  FROM es_append('deep-2', 'put', ('{"k": "a", "v": ' || repeat('[', 998) || repeat(']', 998) || '}')::jsonb);
-- Invalid input: a value 999 levels deep from $data (23S02)
CALL pg_temp.expect_error($$SELECT es_append('deep-2', 'put', ('{"k": "b", "v": ' || repeat('[', 999) || repeat(']', 999) || '}')::jsonb)$$);
-- Invalid input: 998 levels, one more from the effect (23S02)
CALL pg_temp.expect_error($$SELECT es_append('deep-2', 'wrap', ('{"k": "b", "v": ' || repeat('[', 998) || repeat(']', 998) || '}')::jsonb)$$);
SELECT sequence_number FROM es_append('deep-2', 'put', '{"k": "o", "v": {}}');
-- Invalid input: a merge of a value 999 levels deep into /d/o (23S02)
CALL pg_temp.expect_error($$SELECT es_append('deep-2', 'mput', ('{"k": "o", "v": {"z": ' || repeat('{"y": ', 998) || '1' || repeat('}', 998) || '}}')::jsonb)$$);
-- Invalid input: a copy of the 998-level value one level further down (23S02)
CALL pg_temp.expect_error($$SELECT es_append('deep-2', 'cp', '{"k": "a", "to": "o"}')$$);
-- one level less fits, through every route
SELECT sequence_number
  FROM es_append('deep-2', 'wrap', ('{"k": "b", "v": ' || repeat('[', 997) || repeat(']', 997) || '}')::jsonb);
SELECT sequence_number
  FROM es_append('deep-2', 'put', ('{"k": "c", "v": ' || repeat('[', 997) || repeat(']', 997) || '}')::jsonb);
SELECT sequence_number FROM es_append('deep-2', 'cp', '{"k": "c", "to": "o"}');
SELECT sequence_number
  FROM es_append('deep-2', 'mput', ('{"k": "o", "v": {"z": ' || repeat('{"y": ', 997) || '1' || repeat('}', 997) || '}}')::jsonb);
-- a value in the effect itself
SELECT es_define('deep', 'lit',
                 ('[{"op": "add", "path": "/d/{/k}/x", "value": '
                  || repeat('[', 998) || repeat(']', 998) || '}]')::jsonb);
-- Invalid input: the literal value 998 levels deep at /d/o/x would make
-- the state 1001 levels deep (23S02)
CALL pg_temp.expect_error($$SELECT es_append('deep-2', 'lit', '{"k": "o"}')$$);
-- the state, 1000 levels deep, replays, with and without the cache
SELECT es_version('deep-2') AS version, length(es_replay('deep-2')::text) AS state_length;
SET eventsourcing.state_cache_size = 0;
SELECT length(es_replay('deep-2')::text) AS state_length_no_cache,
       md5(es_replay('deep-2')::text) = md5(es_replay('deep-2', es_version('deep-2'))::text) AS same;
RESET eventsourcing.state_cache_size;
-- a snapshot of it, used by a replay without the cache
SELECT es_snapshot('deep-2') AS snapshot_version;
SET eventsourcing.state_cache_size = 0;
SELECT length(es_replay('deep-2')::text) AS state_length_from_snapshot;
RESET eventsourcing.state_cache_size;

--
-- A state of more than 10 MB, from 11 events of 1 MB and more
--
SET eventsourcing.max_event_size = '2MB';
INSERT INTO es.events (stream, event_type, data)
SELECT 'deep-3', 'put', jsonb_build_object('k', 'k' || i, 'v', repeat(chr(96 + i), 1000000))
  FROM generate_series(1, 10) AS i;
SELECT sequence_number
  FROM es_append('deep-3', 'put', jsonb_build_object('k', 'big', 'v', repeat('z', 1500000)));
RESET eventsourcing.max_event_size;
CREATE TEMP TABLE big_state AS SELECT es_replay('deep-3') AS state;
SELECT length(state::text) AS state_length,
       (SELECT count(*) FROM jsonb_object_keys(state->'d')) AS keys,
       length(state->'d'->>'k3') AS k3_length, left(state->'d'->>'k3', 3) AS k3_start
  FROM big_state;
-- without the cache, and with a cache smaller than the state
SET eventsourcing.state_cache_size = 0;
SELECT es_replay('deep-3') = state AS same_without_cache FROM big_state;
SET eventsourcing.state_cache_size = 1;
SELECT es_replay('deep-3') = state AS same_with_small_cache FROM big_state;
SELECT sequence_number FROM es_append('deep-3', 'put', '{"k": "small", "v": 1}');
SELECT es_replay('deep-3', 11) = state AS same_at_11,
       es_replay('deep-3')->'d'->'small' AS small
  FROM big_state;
RESET eventsourcing.state_cache_size;
-- Invalid input: a 100,000-byte member name from a template, in a failing
-- step: the error quotes the path, cut short (23S02)
CALL pg_temp.error_size($$SELECT es_append('deep-3', 'cp', jsonb_build_object('k', repeat('x', 100000), 'to', 'nowhere'))$$);
-- Invalid input: an effect failing on the big state leaves it intact (23S02)
CALL pg_temp.expect_error($$SELECT es_append('deep-3', 'cp', '{"k": "big", "to": "nowhere"}')$$);
SELECT es_replay('deep-3', 11) = state AS intact FROM big_state;

--
-- Data must be a JSON object (checked before validation)
--
-- Invalid input: an array (22023)
CALL pg_temp.expect_error($$SELECT es_append('deep-1', 'put', '[{"k": "a", "v": 1}]')$$);
-- Invalid input: a string (22023)
CALL pg_temp.expect_error($$SELECT es_append('deep-1', 'put', '"a"')$$);
-- Invalid input: JSON null (22023)
CALL pg_temp.expect_error($$SELECT es_append('deep-1', 'put', 'null')$$);
-- Invalid input: an INSERT of a number (22023)
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('deep-1', 'put', '1')$$);
-- Invalid input: a batch element with an array (22023)
CALL pg_temp.expect_error($$SELECT es_append_batch('deep-1', '[{"event_type": "put", "data": [1]}]')$$);
-- Invalid input: an unknown type with non-object data: the data check comes first (22023)
CALL pg_temp.expect_error($$SELECT es_append('deep-1', 'nope', '[]')$$);
-- Invalid input: NULL data (22004)
CALL pg_temp.expect_error($$SELECT es_append('deep-1', 'put', NULL)$$);
SELECT es_version('deep-1') AS version;

--
-- Deep and huge definitions
--
-- Invalid input: an effect value nested 10,000 levels deep (42P17)
CALL pg_temp.expect_error($$SELECT es_define('deep', 'bad', ('[{"op": "add", "path": "/x", "value": ' || repeat('[', 10000) || repeat(']', 10000) || '}]')::jsonb)$$);
-- Invalid input: an effect 1001 levels deep (42P17)
CALL pg_temp.expect_error($$SELECT es_define('deep', 'bad', ('[{"op": "add", "path": "/x", "value": ' || repeat('[', 999) || repeat(']', 999) || '}]')::jsonb)$$);
-- Invalid input: a schema nested 10,000 levels deep (42P17)
CALL pg_temp.expect_error($$SELECT es_define('deep', 'bad', '[]', (repeat('{"items": ', 10000) || '{}' || repeat('}', 10000))::jsonb)$$);
-- Invalid input: a 1 MB path of 500,000 "~" escapes, the last one bad (42P17)
CALL pg_temp.error_size($$SELECT es_define('deep', 'bad', jsonb_build_array(jsonb_build_object('op', 'remove', 'path', '/' || repeat('~0', 500000) || '~')))$$);
-- Invalid input: 100,000 steps, the last one malformed: named by its index (42P17)
CALL pg_temp.expect_error($$SELECT es_define('deep', 'bad', (SELECT jsonb_agg(CASE WHEN i < 99999 THEN '{"op": "exists", "path": ""}'::jsonb ELSE '{"op": "exists"}'::jsonb END ORDER BY i) FROM generate_series(0, 99999) AS i))$$);
SELECT count(*) AS bad_rows FROM es.event_types WHERE category = 'deep' AND event_type = 'bad';
-- a valid effect of 20,001 steps is stored and applied in full
SELECT es_define('deep', 'many',
                 (SELECT '[{"op": "merge", "path": "", "value": {"cnt": {}}}]'::jsonb
                         || jsonb_agg(jsonb_build_object('op', 'add', 'path', '/cnt/{/k}', 'value', i) ORDER BY i)
                    FROM generate_series(1, 20000) AS i));
SELECT jsonb_array_length(effect) AS steps FROM es.event_types
 WHERE category = 'deep' AND event_type = 'many';
SELECT sequence_number FROM es_append('deep-4', 'many', '{"k": "c"}');
SELECT es_replay('deep-4') AS state;

--
-- NULL arguments
--
-- es_define: the NOT NULL constraints of es.event_types refuse them
-- (23502); their detail shows the row with its timestamp, so only the
-- SQLSTATE and the message are shown
CREATE PROCEDURE pg_temp.expect_error_no_detail(query text)
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    BEGIN
        EXECUTE query;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE,
                                v_message = MESSAGE_TEXT;
        RAISE NOTICE '%: %', v_state, v_message;
        RETURN;
    END;
    RAISE NOTICE 'unexpected success: %', query;
END
$$;
-- Invalid input: es_define with a NULL category (23502)
CALL pg_temp.expect_error_no_detail($$SELECT es_define(NULL, 'x', '[]')$$);
-- Invalid input: es_define with a NULL event type (23502)
CALL pg_temp.expect_error_no_detail($$SELECT es_define('deep', NULL, '[]')$$);
-- Invalid input: es_define with a NULL effect (23502)
CALL pg_temp.expect_error_no_detail($$SELECT es_define('deep', 'x', NULL)$$);
-- Invalid input: es_define with nothing at all (23502)
CALL pg_temp.expect_error_no_detail($$SELECT es_define(NULL, NULL, NULL, NULL)$$);
-- Invalid input: es_replay of a NULL stream (22004)
CALL pg_temp.expect_error($$SELECT es_replay(NULL, NULL)$$);
-- Invalid input: es_replay_at of a NULL stream (22004)
CALL pg_temp.expect_error($$SELECT es_replay_at(NULL, NULL)$$);
-- Invalid input: es_replay_all of a NULL category (22004)
CALL pg_temp.expect_error($$SELECT * FROM es_replay_all(NULL)$$);
-- Invalid input: es_snapshot of a NULL stream (22004)
CALL pg_temp.expect_error($$SELECT es_snapshot(NULL)$$);
-- Invalid input: es_replay_at at a NULL time (22004)
CALL pg_temp.expect_error($$SELECT es_replay_at('deep-4', NULL)$$);
-- a NULL sequence number is the head
SELECT es_replay('deep-4', NULL) = es_replay('deep-4') AS null_is_head;
-- nothing was defined by the NULL calls
SELECT count(*) AS null_rows FROM es.event_types WHERE category = 'deep' AND event_type = 'x';
