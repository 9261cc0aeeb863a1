--
-- 006_notify: the eventsourcing.notify and eventsourcing.max_event_size
-- settings, and the notifications themselves, received by a second session
-- (dblink) so that the output holds no process id
--

-- the library is not loaded yet in this session: a value set now is kept
-- and applies once the library loads
SET eventsourcing.notify = off;
SELECT es_version('playbook-60') AS loads_the_library;
SHOW eventsourcing.notify;
RESET eventsourcing.notify;
SHOW eventsourcing.notify;
SHOW eventsourcing.max_event_size;
SELECT name, setting, unit, context, vartype, enumvals, boot_val, min_val, max_val
  FROM pg_settings WHERE name LIKE 'eventsourcing.%' ORDER BY name;

-- values
SET eventsourcing.notify = 'off';
SHOW eventsourcing.notify;
SET eventsourcing.notify = 'COMMIT';
SHOW eventsourcing.notify;
-- Invalid input: an unknown mode
SET eventsourcing.notify = 'always';
-- Invalid input: an unknown parameter under the reserved prefix
SET eventsourcing.notfy = 'off';
SET eventsourcing.max_event_size = '2kB';
SHOW eventsourcing.max_event_size;
SET eventsourcing.max_event_size = 1024;
SHOW eventsourcing.max_event_size;
-- Invalid input: below the minimum
SET eventsourcing.max_event_size = 1023;
-- Invalid input: above the maximum
SET eventsourcing.max_event_size = '1GB';
RESET eventsourcing.max_event_size;
SHOW eventsourcing.max_event_size;

-- LISTEN in this session with notify = off: nothing is announced (psql
-- would print the notification, with a process id, after the statement)
LISTEN es_playbook;
SET eventsourcing.notify = off;
SELECT sequence_number FROM es_append('playbook-60', 'module_add', '{"moduleId": "m0"}');
RESET eventsourcing.notify;
UNLISTEN es_playbook;

--
-- A listener in another session
--
CREATE EXTENSION dblink;
SELECT dblink_connect('listener',
           format('dbname=%L port=%s user=%L', current_database(),
                  current_setting('port'), current_user)
           || coalesce(' host=' || nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), ''))
       AS connected;
SELECT dblink_exec('listener', 'LISTEN es_playbook');
SELECT dblink_exec('listener', 'LISTEN es_image');

CREATE TEMP TABLE received (n serial, channel text, payload text, from_me boolean);

-- collect notifications until a marker payload arrives: this session
-- sends the marker with NOTIFY after its appends have committed, so
-- everything announced before it has arrived too
CREATE PROCEDURE pg_temp.receive(marker text)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 3000 LOOP
        INSERT INTO received (channel, payload, from_me)
        SELECT notify_name, extra, be_pid = pg_backend_pid()
          FROM dblink_get_notify('listener');
        IF EXISTS (SELECT FROM received WHERE payload = marker) THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RAISE NOTICE 'marker % not received', marker;
END
$$;

-- the notifications received since the last call, without per-run values
CREATE FUNCTION pg_temp.take()
RETURNS TABLE (channel text, message jsonb) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH taken AS (DELETE FROM received RETURNING *)
    SELECT t.channel,
           CASE WHEN t.payload LIKE '{%'
                THEN t.payload::jsonb - 'global_position' - 'timestamp'
                ELSE to_jsonb(t.payload) END
      FROM taken t
     WHERE t.from_me
     ORDER BY t.n;
END
$$;

-- one event
SELECT sequence_number
  FROM es_append('playbook-60', 'module_add',
                 '{"moduleId": "m1", "module": {"name": "ping"}, "position": {"x": 100, "y": 200}}',
                 metadata => '{"not": "announced"}',
                 event_id => '00000000-0000-4000-8000-000000006001',
                 user_id => '1', username => 'alice');
NOTIFY es_playbook, 'marker 1';
CALL pg_temp.receive('marker 1');
-- the payload as text, before take() removes it: keys in protocol order,
-- the per-run values equal to the stored event's
SELECT string_agg(m[1], ',' ORDER BY k) AS key_order
  FROM received r,
       regexp_matches(regexp_replace(r.payload, '"data":\{.*?\},"user_id"', '"data":{},"user_id"'),
                      '"([a-z_]+)":', 'g') WITH ORDINALITY AS t(m, k)
 WHERE r.payload LIKE '{%';
SELECT (p->>'global_position')::bigint = e.global_position AS same_position,
       (p->>'timestamp')::timestamptz = e.created_at AS same_time,
       p->>'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$' AS utc_format
  FROM (SELECT payload::jsonb AS p FROM received WHERE payload LIKE '{%') r
  JOIN es.events e ON e.event_id = (r.p->>'event_id')::uuid;
-- the payload is the es_sync message of the event
SELECT r.payload::jsonb = (es_sync('playbook-60', 1)->'events'->0) AS same_as_sync
  FROM received r WHERE r.payload LIKE '{%';
SELECT * FROM pg_temp.take();

-- a batch: one notification per event, in order; a plain INSERT the same
SELECT sequence_number
  FROM es_append_batch('playbook-60', $$[
        {"event_type": "module_add", "data": {"moduleId": "m2"},
         "event_id": "00000000-0000-4000-8000-000000006002", "user_id": "2", "username": "bob"},
        {"event_type": "link_add", "data": {"from": "m1", "to": "m2"},
         "event_id": "00000000-0000-4000-8000-000000006003", "user_id": "2", "username": "bob"}
       ]$$);
INSERT INTO es.events (stream, event_type, data, event_id, user_id, username)
VALUES ('playbook-60', 'module_move', '{"moduleId": "m2", "position": {"x": 5, "y": 6}}',
        '00000000-0000-4000-8000-000000006004', '1', 'alice');
NOTIFY es_playbook, 'marker 2';
CALL pg_temp.receive('marker 2');
SELECT * FROM pg_temp.take();

-- the channel is es_<category>: an image event is not on es_playbook
SELECT sequence_number
  FROM es_append('image-00000000-0000-4000-8000-0000000060aa', 'image_added',
                 '{"target_type": "image", "target_id": "00000000-0000-4000-8000-0000000060aa"}',
                 event_id => '00000000-0000-4000-8000-000000006005');
NOTIFY es_playbook, 'marker 3';
CALL pg_temp.receive('marker 3');
SELECT * FROM pg_temp.take();

-- a 50-byte category names a 53-byte channel
SELECT dblink_exec('listener', 'LISTEN es_' || repeat('c', 50));
SELECT sequence_number
  FROM es_append(repeat('c', 50) || '-1', 'x', '{}',
                 event_id => '00000000-0000-4000-8000-000000006006');
NOTIFY es_playbook, 'marker 4';
CALL pg_temp.receive('marker 4');
SELECT * FROM pg_temp.take();
SELECT dblink_exec('listener', 'UNLISTEN es_' || repeat('c', 50));

-- notifications are sent at commit, in the order of the appends; a
-- rolled-back append, or a rolled-back savepoint, is never announced
BEGIN;
SELECT sequence_number FROM es_append('playbook-60', 'play_add', '{"name": "a"}',
                                      event_id => '00000000-0000-4000-8000-000000006007');
SAVEPOINT s;
SELECT sequence_number FROM es_append('playbook-60', 'play_add', '{"name": "rolled back"}',
                                      event_id => '00000000-0000-4000-8000-000000006008');
ROLLBACK TO SAVEPOINT s;
SELECT sequence_number FROM es_append('playbook-60', 'play_update', '{"name": "b"}',
                                      event_id => '00000000-0000-4000-8000-000000006009');
SELECT pg_sleep(0.1);
SELECT count(*) AS received_before_commit FROM dblink_get_notify('listener');
COMMIT;
BEGIN;
SELECT sequence_number FROM es_append('playbook-60', 'play_delete', '{"name": "b"}',
                                      event_id => '00000000-0000-4000-8000-000000006010');
ROLLBACK;
NOTIFY es_playbook, 'marker 5';
CALL pg_temp.receive('marker 5');
SELECT * FROM pg_temp.take();

-- an idempotent retry appends nothing and announces nothing
SELECT sequence_number FROM es_append('playbook-60', 'play_add', '{"name": "a"}',
                                      event_id => '00000000-0000-4000-8000-000000006007');
NOTIFY es_playbook, 'marker 6';
CALL pg_temp.receive('marker 6');
SELECT * FROM pg_temp.take();

-- notify = off: nothing is announced; the setting applies when the event
-- is appended, not at commit
SET eventsourcing.notify = off;
SELECT sequence_number FROM es_append('playbook-60', 'variable_add', '{"name": "x"}',
                                      event_id => '00000000-0000-4000-8000-000000006011');
RESET eventsourcing.notify;
BEGIN;
SET LOCAL eventsourcing.notify = off;
SELECT sequence_number FROM es_append('playbook-60', 'variable_add', '{"name": "y"}',
                                      event_id => '00000000-0000-4000-8000-000000006012');
SET LOCAL eventsourcing.notify = commit;
SELECT sequence_number FROM es_append('playbook-60', 'variable_add', '{"name": "z"}',
                                      event_id => '00000000-0000-4000-8000-000000006013');
SET LOCAL eventsourcing.notify = off;
COMMIT;
NOTIFY es_playbook, 'marker 7';
CALL pg_temp.receive('marker 7');
SELECT * FROM pg_temp.take();

-- names that need escaping; the timestamp is in UTC whatever the
-- appender's time zone
SET TimeZone = 'Pacific/Kiritimati';
SELECT sequence_number
  FROM es_append('playbook-6"0', 'playbook_rename', '{"name": "«prod» \"1\" \\ \n"}',
                 event_id => '00000000-0000-4000-8000-000000006014',
                 user_id => 'o"brien\', username => E'tab\there');
RESET TimeZone;
NOTIFY es_playbook, 'marker 8';
CALL pg_temp.receive('marker 8');
SELECT payload::jsonb->>'timestamp' LIKE '%Z' AS utc,
       (payload::jsonb->>'timestamp')::timestamptz = e.created_at AS same_time
  FROM received r JOIN es.events e ON e.event_id = '00000000-0000-4000-8000-000000006014'
 WHERE r.payload LIKE '{%';
SELECT * FROM pg_temp.take();

-- a message of 8000 bytes or more goes out without data, with
-- "truncated": true; a smaller one is complete
SELECT sequence_number
  FROM es_append('playbook-61', 'module_config',
                 jsonb_build_object('moduleId', 'm1', 'config', repeat('a', 7000)),
                 event_id => '00000000-0000-4000-8000-000000006101');
SELECT sequence_number
  FROM es_append('playbook-61', 'module_config',
                 jsonb_build_object('moduleId', 'm1', 'config', repeat('b', 8000)),
                 event_id => '00000000-0000-4000-8000-000000006102', username => 'bob');
SELECT sequence_number
  FROM es_append('playbook-61', 'module_config',
                 jsonb_build_object('moduleId', 'm1', 'config', repeat('c', 100000)),
                 event_id => '00000000-0000-4000-8000-000000006103');
NOTIFY es_playbook, 'marker 9';
CALL pg_temp.receive('marker 9');
SELECT octet_length(payload) < 8000 AS fits,
       payload::jsonb ? 'data' AS has_data,
       payload::jsonb->'truncated' AS truncated,
       length(payload::jsonb->'data'->>'config') AS config_length,
       payload::jsonb->>'sequence_number' AS sequence_number
  FROM received WHERE payload LIKE '{%' ORDER BY n;
-- the truncated message keeps every other key, and ends with "truncated"
SELECT payload LIKE '%,"truncated":true}' AS ends_with_truncated
  FROM received WHERE payload LIKE '{%' AND payload::jsonb ? 'truncated' ORDER BY n;
SELECT * FROM pg_temp.take() WHERE message ? 'truncated' OR message = '"marker 9"';
-- the subscriber reads the whole event with es_read
SELECT length(data->>'config') AS config_length FROM es_read('playbook-61', 2, 1);

-- a restored event is not announced
INSERT INTO es.events (global_position, stream, category, sequence_number,
                       event_id, event_type, data, created_at, transaction_id)
VALUES (1000000601, 'playbook-62', 'playbook', 1, '00000000-0000-4000-8000-000000006201',
        'module_add', '{}', '2026-01-19 12:00:00+00', '1');
NOTIFY es_playbook, 'marker 10';
CALL pg_temp.receive('marker 10');
SELECT * FROM pg_temp.take();

SELECT dblink_disconnect('listener');
DROP EXTENSION dblink;
