--
-- 012_validation: in a category with definitions every append (es_append,
-- es_append_batch, a plain INSERT INTO es.events) is validated against the
-- stream's state: unknown type (42S01), data failing the schema (22S01),
-- effect that cannot apply (23S02).  A refused event stores nothing and
-- announces nothing; the expected version is checked first; an idempotent
-- retry returns the stored event; validation sees the earlier events of the
-- same transaction, batch and statement, and forgets rolled-back ones.
-- Categories "kv" (defined) and "kvfree" (no definitions).
--
\i test/sql/include/expect_error.sql

SELECT es_define('kv', 'item_add',
                 '[{"op": "merge", "path": "", "value": {"items": {}}},
                   {"op": "absent", "path": "/items/{/key}"},
                   {"op": "add", "path": "/items/{/key}", "value": {"$data": "/value"}}]',
                 '{"type": "object", "required": ["key", "value"], "additionalProperties": false,
                   "properties": {"key": {"type": "string", "minLength": 1}, "value": {}}}');
SELECT es_define('kv', 'item_set',
                 '[{"op": "replace", "path": "/items/{/key}", "value": {"$data": "/value"}}]',
                 '{"type": "object", "required": ["key", "value"]}');
SELECT es_define('kv', 'item_remove',
                 '[{"op": "remove", "path": "/items/{/key}"}]',
                 '{"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}}');
-- three steps: the first changes the state, the second may fail
SELECT es_define('kv', 'pair_add',
                 '[{"op": "add", "path": "/items/{/a}", "value": {"$data": "/value"}},
                   {"op": "absent", "path": "/items/{/b}"},
                   {"op": "add", "path": "/items/{/b}", "value": {"$data": "/value"}}]');
SELECT es_define('kv', 'item_tags',
                 '[{"op": "exists", "path": "/items/{/key}"},
                   {"op": "merge", "path": "", "value": {"tags": {}}},
                   {"op": "add", "path": "/tags/{/key}", "value": {"$data": "/tags"}}]',
                 '{"type": "object", "required": ["key", "tags"],
                   "properties": {"key": {"type": "string"},
                                  "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}},
                                  "meta": {"type": "object",
                                           "properties": {"level": {"type": "integer"},
                                                          "kind": {"enum": ["a", "b"]}}}}}');

SELECT sequence_number FROM es_append('kv-1', 'item_add', '{"key": "a", "value": 1}');
SELECT sequence_number FROM es_append('kv-1', 'item_add', '{"key": "b", "value": {"n": 2}}');
SELECT sequence_number FROM es_append('kv-1', 'item_tags', '{"key": "a", "tags": ["x", "y"]}');
SELECT es_replay('kv-1') AS state;

--
-- A listener in another session (dblink), to see what is announced
--
CREATE EXTENSION dblink;
SELECT dblink_connect('listener',
           format('dbname=%L port=%s user=%L', current_database(),
                  current_setting('port'), current_user)
           || coalesce(' host=' || nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), ''))
       AS connected;
SELECT dblink_exec('listener', 'LISTEN es_kv');
CREATE TEMP TABLE received (n serial, payload text, from_me boolean);
CREATE PROCEDURE pg_temp.receive(marker text)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 3000 LOOP
        INSERT INTO received (payload, from_me)
        SELECT extra, be_pid = pg_backend_pid()
          FROM dblink_get_notify('listener');
        IF EXISTS (SELECT FROM received WHERE payload = marker) THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RAISE NOTICE 'marker % not received', marker;
END
$$;

--
-- Unknown event type: 42S01
--
-- Invalid input: es_append of a type without definition (42S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_rename', '{"key": "a"}')$$);
-- Invalid input: INSERT of a type without definition (42S01)
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('kv-1', 'item_rename', '{"key": "a"}')$$);
-- Invalid input: a batch whose second element has no definition (42S01)
CALL pg_temp.expect_error($$SELECT es_append_batch('kv-1', '[{"event_type": "item_add", "data": {"key": "c", "value": 3}}, {"event_type": "ITEM_ADD", "data": {"key": "d", "value": 4}}]')$$);
-- Invalid input: a type defined in another category (42S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'page_add', '{"id": "p1", "page": {}}')$$);

--
-- Data that fails the schema: 22S01, the detail names the path
--
-- Invalid input: a required member missing (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_add', '{"key": "c"}')$$);
-- Invalid input: a member of the wrong type (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_add', '{"key": 5, "value": 1}')$$);
-- Invalid input: a string shorter than minLength (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_add', '{"key": "", "value": 1}')$$);
-- Invalid input: a member that additionalProperties false forbids (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_add', '{"key": "c", "value": 1, "note": "x"}')$$);
-- Invalid input: a wrong array element, deep (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_tags', '{"key": "a", "tags": ["x", 7]}')$$);
-- Invalid input: an array element over maxLength (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_tags', '{"key": "a", "tags": ["x", "toolong"]}')$$);
-- Invalid input: a nested number that is not an integer (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_tags', '{"key": "a", "tags": [], "meta": {"level": 1.5}}')$$);
-- Invalid input: a value outside the enum (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_tags', '{"key": "a", "tags": [], "meta": {"kind": "c"}}')$$);
-- Invalid input: INSERT of data failing the schema (22S01)
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('kv-1', 'item_add', '{"key": ["c"], "value": 1}')$$);
-- Invalid input: a batch whose third element fails the schema (22S01)
CALL pg_temp.expect_error($$SELECT es_append_batch('kv-1', '[{"event_type": "item_add", "data": {"key": "c", "value": 3}}, {"event_type": "item_set", "data": {"key": "c", "value": 4}}, {"event_type": "item_remove", "data": {"key": 3}}]')$$);

--
-- An effect that cannot apply: 23S02, the detail names step, op and path
--
-- Invalid input: replace of a missing item (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_set', '{"key": "zz", "value": 1}')$$);
-- Invalid input: remove of a missing item (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_remove', '{"key": "zz"}')$$);
-- Invalid input: add of an existing item: the absent precondition (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_add', '{"key": "a", "value": 9}')$$);
-- Invalid input: the exists precondition (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_tags', '{"key": "zz", "tags": []}')$$);
-- Invalid input: a template that finds nothing in the data (no schema
-- requires it) (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'pair_add', '{"id": "a", "b": "c", "value": 1}')$$);
-- Invalid input: a member the schema requires is missing; the schema is
-- checked before the effect (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_set', '{"id": "a", "value": 1}')$$);
-- Invalid input: a template on a number that is not an integer (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_set', '{"key": 1.5, "value": 1}')$$);
-- Invalid input: a $data that finds nothing (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'pair_add', '{"a": "c", "b": "d"}')$$);
-- Invalid input: the second step fails after the first changed the state (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'pair_add', '{"a": "c", "b": "b", "value": 0}')$$);
-- Invalid input: INSERT of an event whose effect fails (23S02)
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('kv-1', 'item_remove', '{"key": "zz"}')$$);
-- Invalid input: the second row of an INSERT fails: none is stored (23S02)
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('kv-1', 'item_add', '{"key": "c", "value": 3}'), ('kv-1', 'item_add', '{"key": "c", "value": 4}')$$);
-- Invalid input: a batch whose last element fails: none is stored (23S02)
CALL pg_temp.expect_error($$SELECT es_append_batch('kv-1', '[{"event_type": "item_add", "data": {"key": "c", "value": 3}}, {"event_type": "item_add", "data": {"key": "d", "value": 4}}, {"event_type": "item_set", "data": {"key": "e", "value": 5}}]')$$);
-- Invalid input: a batch whose second element fails because of the first (23S02)
CALL pg_temp.expect_error($$SELECT es_append_batch('kv-1', '[{"event_type": "item_remove", "data": {"key": "a"}}, {"event_type": "item_set", "data": {"key": "a", "value": 5}}]')$$);
-- the errors as a client sees them
SELECT es_append('kv-1', 'item_set', '{"key": "zz", "value": 1}');
SELECT es_append('kv-1', 'item_add', '{"key": 5, "value": 1}');
SELECT es_append('kv-1', 'item_rename', '{"key": "a"}');

-- nothing was stored: same version, same rows, same state
SELECT es_version('kv-1') AS version,
       (SELECT count(*) FROM es.events WHERE stream = 'kv-1') AS rows,
       (SELECT version FROM es.streams WHERE stream = 'kv-1') AS streams_version;
SELECT es_replay('kv-1') AS state;
-- a refused effect left the cached state as it was: "c", "d" and "e" are
-- still absent and "a" still present
SELECT sequence_number, event_type
  FROM es_append_batch('kv-1', '[{"event_type": "item_add", "data": {"key": "c", "value": 3}},
                                 {"event_type": "item_add", "data": {"key": "d", "value": 4}},
                                 {"event_type": "item_set", "data": {"key": "a", "value": 10}}]');

-- only that batch was announced
NOTIFY es_kv, 'marker 1';
CALL pg_temp.receive('marker 1');
SELECT (payload::jsonb)->>'stream' AS stream,
       (payload::jsonb)->>'sequence_number' AS seq,
       (payload::jsonb)->>'event_type' AS event_type
  FROM received WHERE from_me AND payload LIKE '{%' ORDER BY n;
SELECT dblink_disconnect('listener');
DROP EXTENSION dblink;

--
-- What needs no state (the type and the schema) is checked before the
-- stream is locked, so it is reported before a wrong expected version; the
-- effect is applied after the expected version is checked (40S01 first)
--
-- Invalid input: an unknown type at a wrong expected version (42S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_rename', '{}', expected_version => 1)$$);
-- Invalid input: schema failure at a wrong expected version (22S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_add', '{}', expected_version => 0)$$);
-- Invalid input: effect failure at a wrong expected version (40S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_set', '{"key": "zz", "value": 1}', expected_version => 99)$$);
-- Invalid input: a batch with a failing element at a wrong expected version (40S01)
CALL pg_temp.expect_error($$SELECT es_append_batch('kv-1', '[{"event_type": "item_set", "data": {"key": "zz", "value": 1}}]', 3)$$);
-- Invalid input: INSERT of an unknown type with a wrong sequence number (42S01)
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, sequence_number) VALUES ('kv-1', 'item_rename', '{}', 2)$$);
-- Invalid input: at the right expected version, the effect fails (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-1', 'item_set', '{"key": "zz", "value": 1}', expected_version => 6)$$);

--
-- A category without definitions accepts anything
--
SELECT sequence_number, event_type
  FROM es_append('kvfree-1', 'item_set', '{"key": "zz", "value": 1}');
SELECT sequence_number, event_type
  FROM es_append_batch('kvfree-1', '[{"event_type": "anything", "data": {"key": 5}},
                                     {"event_type": "item_rename", "data": {}}]');
INSERT INTO es.events (stream, event_type, data)
VALUES ('kvfree-1', 'item_remove', '{"key": "zz"}')
RETURNING sequence_number, event_type;
SELECT es_replay('kvfree-1') AS state, es_version('kvfree-1') AS version;

--
-- An idempotent retry returns the stored event, even though the event would
-- no longer apply to the current state
--
SELECT sequence_number FROM es_append('kv-2', 'item_add', '{"key": "m", "value": 1}',
                                      event_id => '00000000-0000-4000-8000-000000120001');
SELECT sequence_number FROM es_append('kv-2', 'item_set', '{"key": "m", "value": 2}',
                                      event_id => '00000000-0000-4000-8000-000000120002');
-- Invalid input: "m" exists now, a new item_add of "m" is refused ... (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-2', 'item_add', '{"key": "m", "value": 1}')$$);
-- ... but the retry of the first append returns event 1
SELECT sequence_number, event_type, data
  FROM es_append('kv-2', 'item_add', '{"key": "m", "value": 1}',
                 event_id => '00000000-0000-4000-8000-000000120001');
-- also with the expected version of the first attempt
SELECT sequence_number
  FROM es_append('kv-2', 'item_add', '{"key": "m", "value": 1}', expected_version => 0,
                 event_id => '00000000-0000-4000-8000-000000120001');
-- a whole batch retried
SELECT sequence_number, event_type
  FROM es_append_batch('kv-2', '[{"event_type": "item_add", "data": {"key": "m", "value": 1},
                                  "event_id": "00000000-0000-4000-8000-000000120001"},
                                 {"event_type": "item_set", "data": {"key": "m", "value": 2},
                                  "event_id": "00000000-0000-4000-8000-000000120002"}]');
-- a retry through INSERT skips the row
INSERT INTO es.events (stream, event_type, data, event_id)
VALUES ('kv-2', 'item_add', '{"key": "m", "value": 1}', '00000000-0000-4000-8000-000000120001')
RETURNING sequence_number;
-- Invalid input: the retried id with other content is still refused (23S01)
CALL pg_temp.expect_error($$SELECT es_append('kv-2', 'item_add', '{"key": "m", "value": 7}', event_id => '00000000-0000-4000-8000-000000120001')$$);
SELECT es_version('kv-2') AS version, es_replay('kv-2') AS state;

--
-- Validation sees the earlier events of the same transaction, batch and
-- statement
--
BEGIN;
SELECT sequence_number FROM es_append('kv-3', 'item_add', '{"key": "t", "value": 1}');
SELECT sequence_number FROM es_append('kv-3', 'item_set', '{"key": "t", "value": 2}');
-- Invalid input: "t" was added earlier in this transaction (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-3', 'item_add', '{"key": "t", "value": 3}')$$);
SELECT es_replay('kv-3') AS state_in_transaction;
COMMIT;
-- a batch: each element sees the ones before it
SELECT sequence_number, event_type
  FROM es_append_batch('kv-3', '[{"event_type": "item_add", "data": {"key": "u", "value": 1}},
                                 {"event_type": "item_set", "data": {"key": "u", "value": 2}},
                                 {"event_type": "item_remove", "data": {"key": "u"}},
                                 {"event_type": "item_add", "data": {"key": "u", "value": 3}}]');
-- a multi-row INSERT: each row sees the ones before it
INSERT INTO es.events (stream, event_type, data)
VALUES ('kv-3', 'item_add', '{"key": "v", "value": 1}'),
       ('kv-3', 'item_tags', '{"key": "v", "tags": ["t"]}'),
       ('kv-3', 'item_remove', '{"key": "t"}')
RETURNING sequence_number, event_type;
-- INSERT ... SELECT, rows of two streams interleaved
INSERT INTO es.events (stream, event_type, data)
SELECT 'kv-' || (3 + i % 2), 'item_add', jsonb_build_object('key', 'w' || i / 2, 'value', i)
  FROM generate_series(0, 5) AS i
RETURNING stream, sequence_number, data->>'key' AS key;
SELECT stream, version, state FROM es_replay_all('kv') WHERE stream IN ('kv-3', 'kv-4');

--
-- A rolled-back append does not advance the state
--
-- ROLLBACK TO SAVEPOINT, after a successful validated append
BEGIN;
SELECT sequence_number FROM es_append('kv-5', 'item_add', '{"key": "k", "value": 1}');
SAVEPOINT s1;
SELECT sequence_number FROM es_append('kv-5', 'item_add', '{"key": "r", "value": 1}');
SELECT sequence_number FROM es_append('kv-5', 'item_remove', '{"key": "k"}');
ROLLBACK TO SAVEPOINT s1;
SELECT es_replay('kv-5') AS state_after_rollback_to;
-- Invalid input: depends on "r", which was rolled back (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-5', 'item_set', '{"key": "r", "value": 2}')$$);
-- Invalid input: depends on the removal of "k", rolled back too (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-5', 'item_add', '{"key": "k", "value": 2}')$$);
-- depends on the absence of "r" and the presence of "k": accepted
SELECT sequence_number FROM es_append('kv-5', 'item_add', '{"key": "r", "value": 3}');
SELECT sequence_number FROM es_append('kv-5', 'item_set', '{"key": "k", "value": 4}');
-- nested savepoints: roll back the inner one only
SAVEPOINT s2;
SELECT sequence_number FROM es_append('kv-5', 'item_remove', '{"key": "r"}');
SAVEPOINT s3;
SELECT sequence_number FROM es_append('kv-5', 'item_remove', '{"key": "k"}');
ROLLBACK TO SAVEPOINT s3;
RELEASE SAVEPOINT s2;
SELECT sequence_number FROM es_append('kv-5', 'item_set', '{"key": "k", "value": 5}');
-- Invalid input: "r" was removed in the released savepoint (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-5', 'item_set', '{"key": "r", "value": 6}')$$);
COMMIT;
SELECT es_version('kv-5') AS version, es_replay('kv-5') AS state;
SELECT sequence_number, event_type, data FROM es_read('kv-5');

-- a validated append inside a PL/pgSQL block that fails afterwards
DO $$
BEGIN
    PERFORM es_append('kv-5', 'item_add', '{"key": "x", "value": 1}');
    RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
EXCEPTION WHEN SQLSTATE 'P0001' THEN
    NULL;
END
$$;
SELECT sequence_number FROM es_append('kv-5', 'item_add', '{"key": "x", "value": 2}');

-- a full ROLLBACK
BEGIN;
SELECT sequence_number FROM es_append('kv-6', 'item_add', '{"key": "z", "value": 1}');
SELECT es_replay('kv-6') AS state_in_transaction;
ROLLBACK;
SELECT es_version('kv-6') AS version, es_replay('kv-6') AS state;
-- Invalid input: depends on "z", which was rolled back (23S02)
CALL pg_temp.expect_error($$SELECT es_append('kv-6', 'item_set', '{"key": "z", "value": 2}')$$);
-- depends on the absence of "z": accepted
SELECT sequence_number FROM es_append('kv-6', 'item_add', '{"key": "z", "value": 3}');
-- the same after a transaction that failed on a later error
BEGIN;
SELECT sequence_number FROM es_append('kv-6', 'item_remove', '{"key": "z"}');
SELECT 1 / 0;
ROLLBACK;
SELECT sequence_number FROM es_append('kv-6', 'item_set', '{"key": "z", "value": 4}');
SELECT es_version('kv-6') AS version, es_replay('kv-6') AS state;
