--
-- 001_append: es_append, its parameters and result, expected_version and
-- event_id idempotency
--
\i test/sql/include/expect_error.sql

-- the rows appended by this file, as es_append returned them
CREATE TEMP TABLE appended AS
SELECT * FROM es.events WHERE false;

--
-- First event of a new stream, every optional parameter left to its default
--
INSERT INTO appended
SELECT * FROM es_append('playbook-1', 'module_add',
                        '{"moduleId": "m1", "module": {"name": "ping"}, "position": {"x": 100, "y": 200}}');

SELECT stream, category, sequence_number, event_type, data, metadata,
       user_id, username
  FROM appended;

-- generated event_id: a version 4, RFC 4122 variant uuid
SELECT substr(event_id::text, 15, 1) AS uuid_version,
       substr(event_id::text, 20, 1) IN ('8', '9', 'a', 'b') AS rfc4122_variant
  FROM appended;

-- the returned row is the stored row
SELECT count(*) AS stored_rows
  FROM appended a JOIN es.events e USING (global_position)
 WHERE (a.*)::text = (e.*)::text;

-- created_at is the clock time of the append; transaction_id is the
-- appending transaction's
BEGIN;
SELECT created_at >= statement_timestamp() AND created_at <= clock_timestamp()
           AS created_now,
       transaction_id = pg_current_xact_id() AS same_transaction
  FROM es_append('playbook-1', 'module_move', '{"moduleId": "m1", "position": {"x": 1, "y": 2}}');
COMMIT;

-- es.streams follows the stream
SELECT stream, category, version, created_at <= updated_at AS ordered
  FROM es.streams WHERE stream = 'playbook-1';

--
-- Every parameter, by name
--
INSERT INTO appended
SELECT * FROM es_append(stream => 'playbook-1',
                        event_type => 'module_config',
                        data => '{"moduleId": "m1", "config": {"ansible_host": "web1"}}',
                        metadata => '{"client": "editor", "version": 3}',
                        expected_version => 2,
                        event_id => '00000000-0000-4000-8000-000000000101',
                        user_id => '1',
                        username => 'alice');

-- and by position
INSERT INTO appended
SELECT * FROM es_append('playbook-1', 'module_resize',
                        '{"moduleId": "m1", "size": {"w": 200, "h": 80}}',
                        '{"client": "editor"}', 3,
                        '00000000-0000-4000-8000-000000000102', '2', 'bob');

SELECT sequence_number, event_type, event_id, metadata, user_id, username
  FROM appended WHERE sequence_number > 1 ORDER BY sequence_number;

-- global positions increase with sequence numbers
SELECT bool_and(global_position > prev) AS positions_increase
  FROM (SELECT global_position,
               lag(global_position) OVER (ORDER BY sequence_number) AS prev
          FROM es.events WHERE stream = 'playbook-1') s
 WHERE prev IS NOT NULL;

--
-- expected_version
--
-- 0: the stream must have no events
SELECT sequence_number FROM es_append('playbook-2', 'play_add', '{"name": "site"}',
                                      expected_version => 0);
-- Invalid input: expected_version 0 on a stream that has events
CALL pg_temp.expect_error($$SELECT es_append('playbook-2', 'play_add', '{}', expected_version => 0)$$);
-- n: the stream must be at version n
SELECT sequence_number FROM es_append('playbook-2', 'play_update', '{"hosts": "all"}',
                                      expected_version => 1);
-- Invalid input: expected_version behind the stream
CALL pg_temp.expect_error($$SELECT es_append('playbook-2', 'play_update', '{}', expected_version => 1)$$);
-- Invalid input: expected_version ahead of the stream
CALL pg_temp.expect_error($$SELECT es_append('playbook-2', 'play_update', '{}', expected_version => 5)$$);
-- NULL: any version
SELECT sequence_number FROM es_append('playbook-2', 'play_update', '{"become": true}',
                                      expected_version => NULL);
-- Invalid input: expected_version n on a stream that does not exist
CALL pg_temp.expect_error($$SELECT es_append('playbook-3', 'play_add', '{}', expected_version => 3)$$);
-- the failed append created no stream and used no sequence number
SELECT es_version('playbook-3') AS version,
       (SELECT count(*) FROM es.streams WHERE stream = 'playbook-3') AS stream_rows;
SELECT sequence_number FROM es_append('playbook-3', 'play_add', '{}', expected_version => 0);

SELECT es_version('playbook-2') AS version;

--
-- Transactions: several appends in one, and a rolled-back append leaves no gap
--
BEGIN;
SELECT sequence_number FROM es_append('playbook-4', 'module_add', '{"moduleId": "a"}');
SELECT sequence_number FROM es_append('playbook-4', 'module_add', '{"moduleId": "b"}');
SELECT sequence_number FROM es_append('playbook-4', 'module_add', '{"moduleId": "c"}');
SELECT count(DISTINCT transaction_id) AS transactions,
       bool_and(transaction_id = pg_current_xact_id()) AS all_current
  FROM es.events WHERE stream = 'playbook-4';
COMMIT;

BEGIN;
SELECT sequence_number FROM es_append('playbook-4', 'module_delete', '{"moduleId": "a"}');
ROLLBACK;
SELECT es_version('playbook-4') AS version;
SELECT sequence_number, event_type, data
  FROM es_append('playbook-4', 'module_delete', '{"moduleId": "b"}');
SELECT string_agg(sequence_number::text, ',' ORDER BY sequence_number) AS sequences
  FROM es.events WHERE stream = 'playbook-4';

-- a savepoint rolled back inside a transaction leaves no gap either
BEGIN;
SAVEPOINT s;
SELECT sequence_number FROM es_append('playbook-4', 'module_delete', '{"moduleId": "c"}');
ROLLBACK TO SAVEPOINT s;
SELECT sequence_number FROM es_append('playbook-4', 'module_config', '{"moduleId": "c"}');
COMMIT;
SELECT string_agg(sequence_number::text || ':' || event_type, ',' ORDER BY sequence_number) AS events
  FROM es.events WHERE stream = 'playbook-4';

--
-- event_id idempotency
--
CREATE TEMP TABLE first_try AS
SELECT * FROM es_append('playbook-5', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}',
                        metadata => '{"attempt": 1}',
                        event_id => '00000000-0000-4000-8000-000000000501',
                        user_id => '1', username => 'alice');
SELECT sequence_number FROM first_try;

-- the same id with the same content returns the stored event, appends nothing
SELECT r.sequence_number,
       r.global_position = f.global_position AS same_position,
       r.created_at = f.created_at AS same_created_at,
       r.transaction_id = f.transaction_id AS same_transaction
  FROM es_append('playbook-5', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}',
                 metadata => '{"attempt": 1}',
                 event_id => '00000000-0000-4000-8000-000000000501',
                 user_id => '1', username => 'alice') r,
       first_try f;
SELECT es_version('playbook-5') AS version,
       (SELECT count(*) FROM es.events
         WHERE event_id = '00000000-0000-4000-8000-000000000501') AS rows_with_id;

-- jsonb compares by value: key order and white space do not matter
SELECT sequence_number
  FROM es_append('playbook-5', 'module_add', '{"position":{"y":2,"x":1},   "moduleId":"m9"}',
                 metadata => '{"attempt":1}',
                 event_id => '00000000-0000-4000-8000-000000000501',
                 user_id => '1', username => 'alice');

-- the retry is checked before the expected version: a retry that repeats
-- the first attempt's expected_version succeeds
SELECT sequence_number
  FROM es_append('playbook-5', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}',
                 metadata => '{"attempt": 1}', expected_version => 0,
                 event_id => '00000000-0000-4000-8000-000000000501',
                 user_id => '1', username => 'alice');

-- a retry in a later transaction than the original, after other appends
SELECT sequence_number FROM es_append('playbook-5', 'module_move', '{"moduleId": "m9"}');
SELECT sequence_number
  FROM es_append('playbook-5', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}',
                 metadata => '{"attempt": 1}',
                 event_id => '00000000-0000-4000-8000-000000000501',
                 user_id => '1', username => 'alice');
SELECT es_version('playbook-5') AS version;

-- Invalid input: same event_id, other data
CALL pg_temp.expect_error($$SELECT es_append('playbook-5', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 3}}', metadata => '{"attempt": 1}', event_id => '00000000-0000-4000-8000-000000000501', user_id => '1', username => 'alice')$$);
-- Invalid input: same event_id, other event type
CALL pg_temp.expect_error($$SELECT es_append('playbook-5', 'module_move', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}', metadata => '{"attempt": 1}', event_id => '00000000-0000-4000-8000-000000000501', user_id => '1', username => 'alice')$$);
-- Invalid input: same event_id, other stream
CALL pg_temp.expect_error($$SELECT es_append('playbook-6', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}', metadata => '{"attempt": 1}', event_id => '00000000-0000-4000-8000-000000000501', user_id => '1', username => 'alice')$$);
-- Invalid input: same event_id, other metadata
CALL pg_temp.expect_error($$SELECT es_append('playbook-5', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}', metadata => '{"attempt": 2}', event_id => '00000000-0000-4000-8000-000000000501', user_id => '1', username => 'alice')$$);
-- Invalid input: same event_id, metadata missing
CALL pg_temp.expect_error($$SELECT es_append('playbook-5', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}', event_id => '00000000-0000-4000-8000-000000000501', user_id => '1', username => 'alice')$$);
-- Invalid input: same event_id, other user id
CALL pg_temp.expect_error($$SELECT es_append('playbook-5', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}', metadata => '{"attempt": 1}', event_id => '00000000-0000-4000-8000-000000000501', user_id => '2', username => 'alice')$$);
-- Invalid input: same event_id, user name missing
CALL pg_temp.expect_error($$SELECT es_append('playbook-5', 'module_add', '{"moduleId": "m9", "position": {"x": 1, "y": 2}}', metadata => '{"attempt": 1}', event_id => '00000000-0000-4000-8000-000000000501', user_id => '1')$$);
-- nothing was appended by the failed retries, and playbook-6 does not exist
SELECT es_version('playbook-5') AS version_5, es_version('playbook-6') AS version_6;

-- a repeated id inside one transaction is a retry too
BEGIN;
SELECT sequence_number FROM es_append('playbook-5', 'link_add', '{"from": "m9", "to": "m10"}',
                                      event_id => '00000000-0000-4000-8000-000000000502');
SELECT sequence_number FROM es_append('playbook-5', 'link_add', '{"from": "m9", "to": "m10"}',
                                      event_id => '00000000-0000-4000-8000-000000000502');
COMMIT;
SELECT string_agg(sequence_number::text || ':' || event_type, ',' ORDER BY sequence_number) AS events
  FROM es.events WHERE stream = 'playbook-5';

--
-- Names: multibyte and boundary lengths are accepted
--
SELECT stream, category, sequence_number, event_type, user_id, username
  FROM es_append('playbook-éàü', 'playbook_rename', '{"name": "Déploiement"}',
                 user_id => 'é', username => 'Zoë');
-- the id may contain dashes; the category is the part before the first one
SELECT stream, category FROM es_append('playbook-5b1e-42-x', 'playbook_rename', '{}');
-- a one-letter category, a one-byte id
SELECT stream, category FROM es_append('a-1', 'x', '{}');
-- a 50-byte category, a 200-byte stream name, 200-byte type and user fields
SELECT octet_length(stream) AS stream_bytes, octet_length(category) AS category_bytes,
       octet_length(event_type) AS type_bytes, octet_length(user_id) AS user_id_bytes,
       octet_length(username) AS username_bytes
  FROM es_append(repeat('c', 50) || '-' || repeat('9', 149), repeat('t', 200), '{}',
                 user_id => repeat('u', 200), username => repeat('n', 200));
-- multibyte names are measured in bytes: 9 + 95 * 2 = 199 bytes
SELECT octet_length(stream) AS stream_bytes, sequence_number
  FROM es_append('playbook-' || repeat('é', 95), 'module_add', '{}');
-- an empty object as data
SELECT data FROM es_append('playbook-7', 'block_collapse', '{}');

-- a retry compares JSON by value: 1.0 and 1 are the same number
SELECT sequence_number FROM es_append('playbook-91', 'a', '{"a": 1.0, "b": [1, 2]}',
                                      event_id => '00000000-0000-4000-8000-000000009101');
SELECT sequence_number FROM es_append('playbook-91', 'a', '{"b": [1, 2], "a": 1}',
                                      event_id => '00000000-0000-4000-8000-000000009101');
SELECT es_version('playbook-91') AS version;
