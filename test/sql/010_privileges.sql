--
-- 010_privileges: what an application role needs.  The append trigger
-- maintains es.streams and draws global positions as the owner of
-- es.events, so appending needs INSERT (and SELECT for the returned row) on
-- es.events only.
--
\i test/sql/include/expect_error.sql

CREATE ROLE regress_es_app;
CREATE ROLE regress_es_reader;
CREATE ROLE regress_es_nobody;
-- nothing is granted to PUBLIC
SELECT has_schema_privilege('regress_es_nobody', 'es', 'USAGE') AS usage,
       has_table_privilege('regress_es_nobody', 'es.events', 'SELECT') AS select_events,
       has_table_privilege('regress_es_nobody', 'es.events', 'INSERT') AS insert_events,
       has_table_privilege('regress_es_nobody', 'es.streams', 'SELECT') AS select_streams;
-- the functions can be called by anyone; the tables decide
SELECT p.proname, has_function_privilege('regress_es_nobody', p.oid, 'EXECUTE') AS execute
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventsourcing')
 ORDER BY p.proname;

GRANT USAGE ON SCHEMA es TO regress_es_app, regress_es_reader;
GRANT SELECT, INSERT ON es.events TO regress_es_app;
GRANT SELECT ON es.streams TO regress_es_app;
GRANT SELECT ON es.events, es.streams TO regress_es_reader;

--
-- The application role appends and reads
--
SET ROLE regress_es_app;
SELECT sequence_number, event_type, username
  FROM es_append('playbook-100', 'module_add', '{"moduleId": "m1"}',
                 user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append_batch('playbook-100', '[{"event_type": "module_move", "data": {"moduleId": "m1"}},
                                         {"event_type": "module_delete", "data": {"moduleId": "m1"}}]',
                       expected_version => 1);
INSERT INTO es.events (stream, event_type, data)
VALUES ('playbook-100', 'play_add', '{}')
RETURNING sequence_number;
SELECT es_version('playbook-100') AS version;
SELECT sequence_number, event_type FROM es_read('playbook-100', 2);
SELECT es_sync('playbook-100', 3)->'events'->0->>'event_type' AS synced;
SELECT count(*) AS read_all FROM es_read_all(0, NULL, 'nothing');
-- an idempotent retry works for it too
SELECT sequence_number
  FROM es_append('playbook-100', 'variable_add', '{"name": "x"}',
                 event_id => '00000000-0000-4000-8000-000000010001');
SELECT sequence_number
  FROM es_append('playbook-100', 'variable_add', '{"name": "x"}',
                 event_id => '00000000-0000-4000-8000-000000010001');
-- the role cannot write es.streams or the sequence itself ...
-- Invalid input: UPDATE of es.streams by the application role
CALL pg_temp.expect_error($$UPDATE es.streams SET version = 0 WHERE stream = 'playbook-100'$$);
-- Invalid input: nextval of the position sequence by the application role
CALL pg_temp.expect_error($$SELECT nextval('es.events_global_position_seq')$$);
-- ... nor change or remove events
-- Invalid input: UPDATE of es.events by the application role
CALL pg_temp.expect_error($$UPDATE es.events SET data = '{}'$$);
-- Invalid input: DELETE of es.events by the application role
CALL pg_temp.expect_error($$DELETE FROM es.events$$);
-- ... nor load events with their transaction ids (only the owner restores)
-- Invalid input: transaction_id supplied by a role that does not own es.events
CALL pg_temp.expect_error($$INSERT INTO es.events (global_position, stream, category, sequence_number, event_id, event_type, data, created_at, transaction_id) VALUES (1000010001, 'playbook-101', 'playbook', 1, '00000000-0000-4000-8000-000000010101', 'x', '{}', now(), '1')$$);
-- ... nor raise the size limit
-- Invalid input: eventsourcing.max_event_size set by a non-superuser
SET eventsourcing.max_event_size = '10MB';
-- ... nor silence the notifications of its appends
-- Invalid input: eventsourcing.notify set by a non-superuser
SET eventsourcing.notify = off;
RESET ROLE;

-- the trigger stamped the rows as for any appender
SELECT stream, version FROM es.streams WHERE stream = 'playbook-100';
SELECT string_agg(sequence_number || ':' || event_type, ' ' ORDER BY sequence_number) AS events
  FROM es.events WHERE stream = 'playbook-100';

--
-- A role that can read but not insert
--
SET ROLE regress_es_reader;
SELECT es_version('playbook-100') AS version;
SELECT count(*) AS events FROM es_read('playbook-100');
SELECT es_sync('playbook-100', 4)->'current_sequence' AS current_sequence;
-- Invalid input: es_append without INSERT on es.events
CALL pg_temp.expect_error($$SELECT es_append('playbook-100', 'module_add', '{}')$$);
-- Invalid input: es_append_batch without INSERT on es.events
CALL pg_temp.expect_error($$SELECT es_append_batch('playbook-100', '[{"event_type": "a", "data": {}}]')$$);
-- Invalid input: INSERT without INSERT on es.events
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('playbook-100', 'a', '{}')$$);
RESET ROLE;
SELECT es_version('playbook-100') AS version;

--
-- A role without any privilege
--
SET ROLE regress_es_nobody;
-- Invalid input: es_append without USAGE on schema es
CALL pg_temp.expect_error($$SELECT es_append('playbook-100', 'module_add', '{}')$$);
-- Invalid input: es_read without USAGE on schema es
CALL pg_temp.expect_error($$SELECT * FROM es_read('playbook-100')$$);
-- Invalid input: es_version without USAGE on schema es
CALL pg_temp.expect_error($$SELECT es_version('playbook-100')$$);
-- Invalid input: es_read_all without USAGE on schema es
CALL pg_temp.expect_error($$SELECT * FROM es_read_all()$$);
RESET ROLE;

--
-- SELECT on es.events without SELECT on es.streams: appends and reads work,
-- es_version and es_sync need es.streams
--
REVOKE SELECT ON es.streams FROM regress_es_app;
SET ROLE regress_es_app;
SELECT sequence_number FROM es_append('playbook-100', 'play_update', '{}');
SELECT count(*) AS events FROM es_read('playbook-100');
-- Invalid input: es_version without SELECT on es.streams
CALL pg_temp.expect_error($$SELECT es_version('playbook-100')$$);
-- Invalid input: es_sync without SELECT on es.streams
CALL pg_temp.expect_error($$SELECT es_sync('playbook-100', 0)$$);
RESET ROLE;

-- INSERT without SELECT: plain INSERT without RETURNING works; es_append,
-- which returns the stored row, needs SELECT
REVOKE SELECT ON es.events FROM regress_es_app;
SET ROLE regress_es_app;
INSERT INTO es.events (stream, event_type, data) VALUES ('playbook-100', 'play_delete', '{}');
-- Invalid input: es_append without SELECT on es.events
CALL pg_temp.expect_error($$SELECT es_append('playbook-100', 'module_add', '{}')$$);
RESET ROLE;
SELECT string_agg(sequence_number || ':' || event_type, ' ' ORDER BY sequence_number) AS events
  FROM es.events WHERE stream = 'playbook-100';

DROP OWNED BY regress_es_app, regress_es_reader, regress_es_nobody;
DROP ROLE regress_es_app;
DROP ROLE regress_es_reader;
DROP ROLE regress_es_nobody;
