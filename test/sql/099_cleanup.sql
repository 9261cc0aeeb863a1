--
-- 099_cleanup: DROP EXTENSION removes everything it created
--
DROP EXTENSION eventsourcing;
SELECT count(*) AS es_schema FROM pg_namespace WHERE nspname = 'es';
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE 'es\_%' OR proname LIKE 'events\_append%';
SELECT count(*) AS tables FROM pg_class WHERE relname IN ('events', 'streams', 'events_global_position_seq');
-- a fresh install starts from an empty store
CREATE EXTENSION eventsourcing;
SELECT count(*) AS events FROM es.events;
SELECT count(*) AS streams FROM es.streams;
SELECT global_position, sequence_number FROM es_append('playbook-1', 'module_add', '{}');
DROP EXTENSION eventsourcing;
SELECT count(*) AS es_schema FROM pg_namespace WHERE nspname = 'es';
