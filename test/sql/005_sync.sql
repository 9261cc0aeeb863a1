--
-- 005_sync: es_sync, the catch-up message of the playbook editor
--
\i test/sql/include/expect_error.sql

SELECT sequence_number
  FROM es_append_batch('playbook-50', $$[
        {"event_type": "module_add",
         "data": {"moduleId": "m1", "module": {"name": "copy"}, "position": {"x": 100, "y": 200}},
         "event_id": "00000000-0000-4000-8000-000000005001",
         "user_id": "1", "username": "alice"},
        {"event_type": "module_move",
         "data": {"moduleId": "m1", "position": {"x": 300, "y": 120}},
         "event_id": "00000000-0000-4000-8000-000000005002",
         "user_id": "2", "username": "bob"},
        {"event_type": "playbook_rename",
         "data": {"name": "site \"prod\" \\ é ✓"},
         "metadata": {"not": "in the message"},
         "event_id": "00000000-0000-4000-8000-000000005003"}
       ]$$);

-- the message without its per-run values (positions, timestamps)
CREATE FUNCTION pg_temp.stable(msg jsonb)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_set(msg, '{events}',
                     coalesce((SELECT jsonb_agg(e - 'global_position' - 'timestamp' ORDER BY n)
                                 FROM jsonb_array_elements(msg->'events') WITH ORDINALITY AS t(e, n)),
                              '[]'))
$$;

-- a client that has seen nothing
SELECT jsonb_pretty(pg_temp.stable(es_sync('playbook-50', 0)));

-- a client that has applied event 1
SELECT pg_temp.stable(es_sync('playbook-50', 1));
-- an up-to-date client, and one that claims more than exists
SELECT es_sync('playbook-50', 3) AS up_to_date;
SELECT es_sync('playbook-50', 10) AS ahead;
-- an unknown stream
SELECT es_sync('playbook-59', 0) AS unknown_stream;
-- NULL last_sequence means 0
SELECT es_sync('playbook-50', NULL) = es_sync('playbook-50', 0) AS null_is_zero;

-- every event message has exactly these keys
SELECT e.n, array_agg(k ORDER BY k) AS keys
  FROM jsonb_array_elements(es_sync('playbook-50', 0)->'events') WITH ORDINALITY AS e(msg, n),
       LATERAL jsonb_object_keys(e.msg) AS k
 GROUP BY e.n ORDER BY e.n;

-- the per-run values agree with the stored events; the timestamp is
-- created_at in UTC with a "Z", whatever the session's time zone
SET TimeZone = 'Asia/Tokyo';
SELECT (m->>'sequence_number')::bigint AS sequence_number,
       (m->>'global_position')::bigint = e.global_position AS same_position,
       (m->>'event_id')::uuid = e.event_id AS same_id,
       m->>'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$' AS utc_format,
       (m->>'timestamp')::timestamptz = e.created_at AS same_time
  FROM jsonb_array_elements(es_sync('playbook-50', 0)->'events') AS m
  JOIN es.events e ON e.stream = 'playbook-50'
                  AND e.sequence_number = (m->>'sequence_number')::bigint
 ORDER BY 1;
SELECT es_sync('playbook-50', 0) AS sync_tokyo \gset
SET TimeZone = 'America/New_York';
SELECT es_sync('playbook-50', 0) = :'sync_tokyo'::jsonb AS same_message_in_any_time_zone;
RESET TimeZone;

-- events are in sequence order; current_sequence is the stream's version
SELECT array_agg((m->>'sequence_number')::int ORDER BY n) AS sequences,
       (SELECT (es_sync('playbook-50', 0)->>'current_sequence')::bigint) = es_version('playbook-50')
           AS current_is_version
  FROM jsonb_array_elements(es_sync('playbook-50', 0)->'events') WITH ORDINALITY AS t(m, n);

-- events and current_sequence come from one snapshot: inside a transaction
-- that appends, es_sync sees the new event and the new version
BEGIN;
SELECT sequence_number FROM es_append('playbook-50', 'module_delete', '{"moduleId": "m1"}',
                                      event_id => '00000000-0000-4000-8000-000000005004');
SELECT pg_temp.stable(es_sync('playbook-50', 3));
ROLLBACK;
SELECT es_sync('playbook-50', 3) AS after_rollback;

-- an event never truncated in es_sync, however large
SELECT sequence_number
  FROM es_append('playbook-51', 'module_config',
                 jsonb_build_object('moduleId', 'm1', 'config', repeat('x', 20000)),
                 event_id => '00000000-0000-4000-8000-000000005101');
SELECT length(m->'data'->>'config') AS config_length, m ? 'truncated' AS truncated
  FROM jsonb_array_elements(es_sync('playbook-51', 0)->'events') AS m;

-- a catch-up of many events (more than one cursor fetch)
SELECT count(*) AS appended
  FROM es_append_batch('playbook-52',
                       (SELECT jsonb_agg(jsonb_build_object('event_type', 'module_add',
                                                            'data', jsonb_build_object('moduleId', 'm' || i)))
                          FROM generate_series(1, 2500) AS i));
SELECT jsonb_array_length(s->'events') AS events,
       s->'events'->0->>'sequence_number' AS first,
       s->'events'->-1->>'sequence_number' AS last,
       s->'events'->-1->'data' AS last_data,
       s->'current_sequence' AS current_sequence
  FROM es_sync('playbook-52', 1) AS s;

-- Invalid input: NULL stream
CALL pg_temp.expect_error($$SELECT es_sync(NULL, 0)$$);
-- Invalid input: invalid stream name
CALL pg_temp.expect_error($$SELECT es_sync('playbook', 0)$$);
-- Invalid input: negative last_sequence
CALL pg_temp.expect_error($$SELECT es_sync('playbook-50', -1)$$);
