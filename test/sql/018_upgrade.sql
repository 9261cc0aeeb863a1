--
-- 018_upgrade: version 1.0 updated to 1.1, 1.2 and then 1.3 has exactly
-- the objects of a fresh 1.3, and keeps the events appended under 1.0.
--
DROP EXTENSION eventsourcing CASCADE;

-- the objects of the extension: kind, identity, and what defines them
CREATE FUNCTION pg_temp.extension_objects()
RETURNS TABLE (object text, definition text)
LANGUAGE sql AS $$
    SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
           CASE d.classid
               WHEN 'pg_proc'::regclass THEN
                   (SELECT pg_get_function_identity_arguments(p.oid) || ' -> ' ||
                           pg_get_function_result(p.oid) || ' ' || p.provolatile::text ||
                           p.proparallel::text || CASE WHEN p.proisstrict THEN ' strict' ELSE '' END ||
                           coalesce(' ' || array_to_string(p.proconfig, ','), '')
                      FROM pg_proc p WHERE p.oid = d.objid)
               WHEN 'pg_class'::regclass THEN
                   (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
                                      CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                                      ', ' ORDER BY a.attnum)
                      FROM pg_attribute a
                     WHERE a.attrelid = d.objid AND a.attnum > 0 AND NOT a.attisdropped)
           END
      FROM pg_depend d
     WHERE d.refclassid = 'pg_extension'::regclass
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventsourcing')
       AND d.deptype = 'e'
    UNION ALL
    -- triggers, indexes and constraints belong to their tables
    SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass, pg_get_triggerdef(t.oid)
      FROM pg_trigger t
     WHERE t.tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'es'))
       AND NOT t.tgisinternal
    UNION ALL
    SELECT 'index ' || i.indexrelid::regclass, pg_get_indexdef(i.indexrelid)
      FROM pg_index i
     WHERE i.indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'es'))
    UNION ALL
    SELECT 'dumped ' || c::regclass, coalesce(w, '')
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, w)
     WHERE e.extname = 'eventsourcing'
$$;

CREATE EXTENSION eventsourcing VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsourcing';
SELECT sequence_number FROM es_append('upgrade-1', 'module_add', '{"moduleId": "m1"}');
ALTER EXTENSION eventsourcing UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'eventsourcing';

-- the event appended under 1.0 is still there, and the 1.1 functions see it
SELECT stream, sequence_number, event_type FROM es.events WHERE stream = 'upgrade-1';
SELECT es_replay('upgrade-1');
SELECT es_define('upgrade', 'module_add',
                 '[{"op": "add", "path": "/{/moduleId}", "value": true}]');
SELECT sequence_number FROM es_append('upgrade-1', 'module_add', '{"moduleId": "m2"}');
-- m1, appended before its type had a definition, now applies too: replay
-- always uses the current definitions
SELECT es_replay('upgrade-1');

-- 1.1 to 1.2: history
ALTER EXTENSION eventsourcing UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'eventsourcing';
-- events appended before 1.2 have no database role; new ones do
SELECT sequence_number, db_role IS NULL AS no_role FROM es.events
 WHERE stream = 'upgrade-1' ORDER BY 1;
SELECT sequence_number, event_type, data->'patch' AS patch,
       db_role = current_user AS by_me
  FROM es_undo('upgrade-1', 2);
SELECT es_replay('upgrade-1');
SELECT sequence_number, event_type, undone_by FROM es.audit
 WHERE stream = 'upgrade-1' ORDER BY 1;
SELECT * FROM es_verify();

-- 1.2 to 1.3: the notify queue and es.notify_status (this server does not
-- preload the library: no notifier, commit mode)
ALTER EXTENSION eventsourcing UPDATE TO '1.3';
SELECT extversion FROM pg_extension WHERE extname = 'eventsourcing';
CREATE TEMP TABLE updated AS SELECT * FROM pg_temp.extension_objects();
SELECT mode, worker_pid, worker_state, queued_transactions, lag_events, lag,
       last_position, events_sent, last_error
  FROM es.notify_status;
SELECT sequence_number FROM es_append('upgrade-1', 'module_add', '{"moduleId": "m3"}');
SELECT count(*) AS queued FROM es.notify_queue;

DROP EXTENSION eventsourcing;
CREATE EXTENSION eventsourcing;
SELECT extversion FROM pg_extension WHERE extname = 'eventsourcing';
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.extension_objects();

-- no difference either way (both queries return no row)
SELECT 'only after update' AS side, * FROM (SELECT * FROM updated EXCEPT SELECT * FROM fresh) d
UNION ALL
SELECT 'only in fresh install', * FROM (SELECT * FROM fresh EXCEPT SELECT * FROM updated) d;
-- and there is something to compare
SELECT count(*) > 30 AS many_objects FROM fresh;
SELECT object FROM fresh WHERE object LIKE 'table es.%' OR object LIKE 'dumped %' ORDER BY 1;
