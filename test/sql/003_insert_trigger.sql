--
-- 003_insert_trigger: a plain INSERT INTO es.events takes the append path of
-- es_append; UPDATE, DELETE and TRUNCATE are refused; the owner restores
-- dumped rows
--
\i test/sql/include/expect_error.sql

--
-- INSERT assigns what es_append assigns
--
INSERT INTO es.events (stream, event_type, data, user_id, username)
VALUES ('playbook-30', 'module_add', '{"moduleId": "m1"}', '1', 'alice')
RETURNING stream, category, sequence_number, event_type, data, metadata,
          user_id, username, event_id IS NOT NULL AS has_id,
          global_position IS NOT NULL AS has_position,
          created_at >= statement_timestamp() AS created_now,
          transaction_id = pg_current_xact_id() AS same_transaction;

-- es_append continues the same numbering
SELECT sequence_number FROM es_append('playbook-30', 'module_move', '{"moduleId": "m1"}');
INSERT INTO es.events (stream, event_type, data)
VALUES ('playbook-30', 'module_delete', '{"moduleId": "m1"}')
RETURNING sequence_number;
SELECT stream, version FROM es.streams WHERE stream = 'playbook-30';

-- several rows, several streams, one statement
INSERT INTO es.events (stream, event_type, data)
VALUES ('playbook-31', 'a', '{}'),
       ('playbook-32', 'a', '{}'),
       ('playbook-31', 'b', '{}'),
       ('playbook-31', 'c', '{}'),
       ('playbook-32', 'b', '{}')
RETURNING stream, sequence_number, event_type;

-- INSERT ... SELECT
INSERT INTO es.events (stream, event_type, data)
SELECT 'playbook-33', 'variable_add', jsonb_build_object('name', 'v' || i)
  FROM generate_series(1, 5) AS i
RETURNING sequence_number, data;

-- COPY goes through the same trigger
COPY es.events (stream, event_type, data, user_id, username) FROM stdin;
playbook-34	module_add	{"moduleId": "m1"}	1	alice
playbook-34	module_add	{"moduleId": "m2"}	2	bob
playbook-35	play_add	{"name": "db"}	\N	\N
\.
SELECT stream, sequence_number, event_type, data, user_id, username,
       event_id IS NOT NULL AS has_id
  FROM es.events WHERE stream IN ('playbook-34', 'playbook-35')
 ORDER BY stream, sequence_number;
SELECT stream, version FROM es.streams
 WHERE stream IN ('playbook-31', 'playbook-32', 'playbook-33', 'playbook-34', 'playbook-35')
 ORDER BY stream;

--
-- A supplied sequence_number must be the stream's version + 1
--
INSERT INTO es.events (stream, event_type, data, sequence_number)
VALUES ('playbook-36', 'a', '{}', 1)
RETURNING sequence_number;
INSERT INTO es.events (stream, event_type, data, sequence_number)
VALUES ('playbook-36', 'b', '{}', 2), ('playbook-36', 'c', '{}', 3)
RETURNING sequence_number, event_type;
-- Invalid input: a sequence number already taken
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, sequence_number) VALUES ('playbook-36', 'x', '{}', 3)$$);
-- Invalid input: a sequence number that would leave a gap
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, sequence_number) VALUES ('playbook-36', 'x', '{}', 5)$$);
-- Invalid input: sequence number 0
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, sequence_number) VALUES ('playbook-36', 'x', '{}', 0)$$);
-- Invalid input: one bad row fails the whole statement
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, sequence_number) VALUES ('playbook-36', 'd', '{}', 4), ('playbook-36', 'e', '{}', 4)$$);
SELECT es_version('playbook-36') AS version;

--
-- Columns the trigger assigns cannot be supplied
--
-- Invalid input: global_position supplied
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, global_position) VALUES ('playbook-37', 'a', '{}', 123456789)$$);
-- Invalid input: category supplied, even the right one
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, category) VALUES ('playbook-37', 'a', '{}', 'playbook')$$);
-- Invalid input: created_at supplied
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, created_at) VALUES ('playbook-37', 'a', '{}', now())$$);
-- the same error as a client sees it
INSERT INTO es.events (stream, event_type, data, global_position)
VALUES ('playbook-37', 'a', '{}', 1);
SELECT es_version('playbook-37') AS version;

-- an explicit NULL or DEFAULT is no value
INSERT INTO es.events (stream, event_type, data, global_position, category,
                       created_at, event_id, sequence_number, transaction_id)
VALUES ('playbook-37', 'a', '{}', NULL, DEFAULT, NULL, NULL, NULL, NULL)
RETURNING sequence_number, category, event_id IS NOT NULL AS has_id;

--
-- event_id through INSERT
--
INSERT INTO es.events (stream, event_type, data, event_id)
VALUES ('playbook-38', 'module_add', '{"moduleId": "m1"}', '00000000-0000-4000-8000-000000003801')
RETURNING sequence_number, event_id;
-- the same event again: the row is skipped, nothing is returned or appended
INSERT INTO es.events (stream, event_type, data, event_id)
VALUES ('playbook-38', 'module_add', '{"moduleId": "m1"}', '00000000-0000-4000-8000-000000003801')
RETURNING sequence_number, event_id;
-- a skipped retry next to a new event in one statement
INSERT INTO es.events (stream, event_type, data, event_id)
VALUES ('playbook-38', 'module_add', '{"moduleId": "m1"}', '00000000-0000-4000-8000-000000003801'),
       ('playbook-38', 'module_move', '{"moduleId": "m1"}', '00000000-0000-4000-8000-000000003802')
RETURNING sequence_number, event_id;
SELECT es_version('playbook-38') AS version;
-- Invalid input: the id with other content
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, event_id) VALUES ('playbook-38', 'module_add', '{"moduleId": "m2"}', '00000000-0000-4000-8000-000000003801')$$);
-- Invalid input: the id, same content, in another stream
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, event_id) VALUES ('playbook-39', 'module_add', '{"moduleId": "m1"}', '00000000-0000-4000-8000-000000003801')$$);

--
-- The event log is append-only, for its owner too
--
-- Invalid input: UPDATE
CALL pg_temp.expect_error($$UPDATE es.events SET data = '{}' WHERE stream = 'playbook-38'$$);
-- Invalid input: UPDATE that matches no row
CALL pg_temp.expect_error($$UPDATE es.events SET data = '{}' WHERE false$$);
-- Invalid input: DELETE
CALL pg_temp.expect_error($$DELETE FROM es.events WHERE stream = 'playbook-38'$$);
-- Invalid input: DELETE that matches no row
CALL pg_temp.expect_error($$DELETE FROM es.events WHERE false$$);
-- Invalid input: TRUNCATE
CALL pg_temp.expect_error($$TRUNCATE es.events$$);
-- Invalid input: INSERT ... ON CONFLICT DO UPDATE cannot rewrite an event
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, event_id) VALUES ('playbook-38', 'module_add', '{"moduleId": "m9"}', '00000000-0000-4000-8000-000000003899') ON CONFLICT (stream, sequence_number) DO UPDATE SET data = excluded.data$$);
-- the errors as a client sees them
UPDATE es.events SET data = '{}' WHERE stream = 'playbook-38';
DELETE FROM es.events;
TRUNCATE es.events;
SELECT count(*) AS events, es_version('playbook-38') AS version
  FROM es.events WHERE stream = 'playbook-38';

--
-- Restore: the owner of es.events may load rows that carry every column,
-- as pg_dump's COPY does
--
SELECT pg_get_userbyid(relowner) = current_user AS owner
  FROM pg_class WHERE oid = 'es.events'::regclass;
BEGIN;
INSERT INTO es.events (global_position, stream, category, sequence_number,
                       event_id, event_type, data, metadata, user_id,
                       username, created_at, transaction_id)
VALUES (1000000001, 'restored-1', 'restored', 1, '00000000-0000-4000-8000-000000003901',
        'image_added', '{"target_type": "image", "target_id": 1}', NULL, 'u1', 'alice',
        '2026-01-19 12:00:00+00', '12345'),
       (1000000002, 'restored-1', 'restored', 2, '00000000-0000-4000-8000-000000003902',
        'tag_added', '{"target_type": "image", "target_id": 1, "tag": "sea"}', '{"m": 1}', NULL, NULL,
        '2026-01-19 12:00:01+00', '12346')
RETURNING global_position, stream, category, sequence_number, event_id,
          event_type, data, metadata, user_id, username,
          created_at AT TIME ZONE 'UTC' AS created_at_utc,
          transaction_id = pg_current_xact_id() AS restoring_transaction;
-- es.streams is restored separately, by its own rows
SELECT count(*) AS stream_rows FROM es.streams WHERE stream = 'restored-1';
INSERT INTO es.streams (stream, category, version, created_at, updated_at)
VALUES ('restored-1', 'restored', 2, '2026-01-19 12:00:00+00', '2026-01-19 12:00:01+00');
COMMIT;
SELECT sequence_number, event_type FROM es_read('restored-1');
-- appends continue after the restored version
SELECT sequence_number, global_position < 1000000000 AS from_sequence
  FROM es_append('restored-1', 'rating_set', '{"target_type": "image", "target_id": 1, "rating": 4}');
-- a restored row is still validated
-- Invalid input: restored row with a category that does not match its stream
CALL pg_temp.expect_error($$INSERT INTO es.events (global_position, stream, category, sequence_number, event_id, event_type, data, created_at, transaction_id) VALUES (1000000003, 'restored-2', 'image', 1, '00000000-0000-4000-8000-000000003903', 'x', '{}', now(), '1')$$);
-- Invalid input: restored row without a category
CALL pg_temp.expect_error($$INSERT INTO es.events (global_position, stream, sequence_number, event_id, event_type, data, created_at, transaction_id) VALUES (1000000003, 'restored-2', 1, '00000000-0000-4000-8000-000000003903', 'x', '{}', now(), '1')$$);
-- Invalid input: restored row with data that is not an object
CALL pg_temp.expect_error($$INSERT INTO es.events (global_position, stream, category, sequence_number, event_id, event_type, data, created_at, transaction_id) VALUES (1000000003, 'restored-2', 'restored', 1, '00000000-0000-4000-8000-000000003903', 'x', '[]', now(), '1')$$);
-- Invalid input: restored row with an invalid stream name
CALL pg_temp.expect_error($$INSERT INTO es.events (global_position, stream, category, sequence_number, event_id, event_type, data, created_at, transaction_id) VALUES (1000000003, 'Restored', 'restored', 1, '00000000-0000-4000-8000-000000003903', 'x', '{}', now(), '1')$$);
-- Invalid input: restored row without a global position (terse: the
-- detail would show the row with the restoring transaction's id)
\set VERBOSITY terse
INSERT INTO es.events (stream, category, sequence_number, event_id, event_type, data, created_at, transaction_id)
VALUES ('restored-2', 'restored', 1, '00000000-0000-4000-8000-000000003903', 'x', '{}', now(), '1');
\set VERBOSITY default
SELECT count(*) AS restored_2 FROM es.events WHERE stream = 'restored-2';

-- a BEFORE INSERT row trigger that fires before the append trigger (name
-- order) is allowed; one that would fire after it is refused, since it
-- could change or skip a row whose numbers were already assigned
CREATE FUNCTION pg_temp.touch() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN NEW.metadata := '{"touched": true}'; RETURN NEW; END$$;
CREATE TRIGGER aaa_touch BEFORE INSERT ON es.events
    FOR EACH ROW EXECUTE FUNCTION pg_temp.touch();
SELECT sequence_number, metadata FROM es_append('playbook-93', 'a', '{}');
DROP TRIGGER aaa_touch ON es.events;
CREATE TRIGGER zzz_touch BEFORE INSERT ON es.events
    FOR EACH ROW EXECUTE FUNCTION pg_temp.touch();
-- Invalid input: a BEFORE INSERT row trigger that fires after "append"
CALL pg_temp.expect_error($$SELECT es_append('playbook-93', 'b', '{}')$$);
DROP TRIGGER zzz_touch ON es.events;
SELECT es_version('playbook-93') AS version;

-- a trigger firing before "append" that skips the row: INSERT stores
-- nothing, es_append says so instead of returning a row
CREATE FUNCTION pg_temp.skip() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RETURN NULL; END$$;
CREATE TRIGGER aaa_skip BEFORE INSERT ON es.events
    FOR EACH ROW EXECUTE FUNCTION pg_temp.skip();
INSERT INTO es.events (stream, event_type, data) VALUES ('playbook-94', 'a', '{}');
-- Invalid input: es_append of a row that a trigger skips
CALL pg_temp.expect_error($$SELECT es_append('playbook-94', 'a', '{}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-94', 'a', '{}', event_id => '00000000-0000-4000-8000-0000000094a1')$$);
DROP TRIGGER aaa_skip ON es.events;
SELECT es_version('playbook-94') AS version;

-- one multi-row INSERT that repeats an event id stores it once
INSERT INTO es.events (stream, event_type, data, event_id)
VALUES ('playbook-95', 'a', '{}', '00000000-0000-4000-8000-0000000095a1'),
       ('playbook-95', 'a', '{}', '00000000-0000-4000-8000-0000000095a1');
SELECT sequence_number, event_id FROM es_read('playbook-95');
