--
-- 021_handle: es_handle, the editor's WebSocket protocol answered by the
-- database (src/handle.c), in the playbook category (examples/playbook.sql).
-- Every message type: action (reply NULL, the event stored with the given
-- event_id, user_id and username; expected_version), an idempotent retry by
-- event_id (the stored event's message, nothing appended) and its reuse
-- with other content (23S01); sync with and without last_sequence;
-- time_travel by target_sequence, by target_time (times taken from
-- es.events.created_at) and with neither; undo and redo with
-- data.target_sequence and without it (es_undo_last / es_redo_last), their
-- conflicts (23S03) and refusals (55S02, 55000) as error replies; every
-- error reply the client can cause, with its code, message, detail and
-- original_action (malformed messages, refused events, wrong versions,
-- malformed members, a deleted stream 55S03, history removed by compaction
-- 55S01); after an error reply nothing is stored and the caller's
-- transaction goes on; the NOTIFY of an action, received by a second
-- session (dblink); a retry assigns no transaction id; server-side
-- errors (privileges 42501, a read-only transaction 25006) are raised, not
-- replied.
-- Streams playbook-h0 .. playbook-h11, playbook-h2b, playbook-h3-empty,
-- playbook-h4-empty (category "playbook") and handlefree-1 (a category
-- without definitions); roles regress_es_handle_reader and
-- regress_es_handle_nobody.
--
-- Start from a fresh extension: nothing here depends on earlier files.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS eventsourcing CASCADE;
CREATE EXTENSION eventsourcing;
RESET client_min_messages;
\i test/sql/include/expect_error.sql

-- load the definitions (the file's own output is not shown; an error would be)
\set ECHO none
\o /dev/null
\i examples/playbook.sql
\o
\set ECHO all
-- the 18 event types of the playbook editor
SELECT count(*) AS playbook_types FROM es.event_types WHERE category = 'playbook';

-- a NULL reply (no reply to the sender) is shown as (null)
\pset null '(null)'

-- a reply without its per-run values: the timestamp and global position of
-- event messages (alone or in a sync_batch) are left out, an event id this
-- file did not choose (those of undo and redo events, of actions sent
-- without one) becomes "<generated>", and a time in an error's message or
-- detail becomes <time>; everything else is shown as es_handle returned it
CREATE FUNCTION pg_temp.event(e jsonb) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT CASE WHEN e->>'event_id' LIKE '00000000-0000-4000-8000-000000021%'
                THEN e - 'timestamp' - 'global_position'
                ELSE jsonb_set(e - 'timestamp' - 'global_position', '{event_id}', '"<generated>"')
           END
$$;
-- a text with every time in it replaced by <time>
CREATE FUNCTION pg_temp.no_time(t text) RETURNS text
LANGUAGE sql AS $$
    SELECT regexp_replace(t, '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+([+-][0-9:]+)?', '<time>', 'g')
$$;
-- the reply r without its per-run values
CREATE FUNCTION pg_temp.stable(r jsonb) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT CASE r->>'type'
           WHEN 'event' THEN pg_temp.event(r)
           WHEN 'sync_batch' THEN
               jsonb_set(r, '{events}',
                         coalesce((SELECT jsonb_agg(pg_temp.event(e) ORDER BY n)
                                     FROM jsonb_array_elements(r->'events') WITH ORDINALITY AS t(e, n)),
                                  '[]'))
           WHEN 'error' THEN
               r || jsonb_strip_nulls(jsonb_build_object(
                        'message', pg_temp.no_time(r->>'message'),
                        'detail', pg_temp.no_time(r->>'detail')))
           ELSE r END
$$;

-- a stream's events, one line each, without per-run values
CREATE FUNCTION pg_temp.events(s text)
RETURNS TABLE (n bigint, event_type text, event_id text, user_id text, username text, data jsonb)
LANGUAGE sql AS $$
    SELECT e.sequence_number, e.event_type,
           CASE WHEN e.event_id::text LIKE '00000000-0000-4000-8000-000000021%'
                THEN e.event_id::text ELSE '<generated>' END,
           e.user_id, e.username, e.data
      FROM es.events e WHERE e.stream = s ORDER BY e.sequence_number
$$;

--
-- 1. Messages that are not messages: error replies, nothing stored
--

-- Invalid input: a NULL stream
SELECT pg_temp.stable(es_handle(NULL, '{"type": "sync"}', '1', 'alice')) AS reply;
-- Invalid input: a NULL message (original_action is null)
SELECT pg_temp.stable(es_handle('playbook-h0', NULL, '1', 'alice')) AS reply;
-- Invalid input: an invalid stream name (no category-id form), in an action
SELECT pg_temp.stable(es_handle('h0', '{"type": "action", "event_type": "module_add", "data": {}}', '1', 'alice')) AS reply;
-- Invalid input: an invalid stream name in a sync
SELECT pg_temp.stable(es_handle('Playbook h0', '{"type": "sync"}')) AS reply;
-- Invalid input: an invalid stream name in a time_travel
SELECT pg_temp.stable(es_handle('-h0', '{"type": "time_travel"}')) AS reply;
-- Invalid input: an invalid stream name in a time_travel by time
SELECT pg_temp.stable(es_handle('-h0', '{"type": "time_travel", "target_time": "2026-01-01T00:00:00Z"}')) AS reply;
-- Invalid input: an array
SELECT pg_temp.stable(es_handle('playbook-h0', '[{"type": "sync"}]')) AS reply;
-- Invalid input: an empty array
SELECT pg_temp.stable(es_handle('playbook-h0', '[]')) AS reply;
-- Invalid input: a number
SELECT pg_temp.stable(es_handle('playbook-h0', '42')) AS reply;
-- Invalid input: a string
SELECT pg_temp.stable(es_handle('playbook-h0', '"sync"')) AS reply;
-- Invalid input: JSON null (not SQL NULL)
SELECT pg_temp.stable(es_handle('playbook-h0', 'null')) AS reply;
-- Invalid input: an object without "type"
SELECT pg_temp.stable(es_handle('playbook-h0', '{}')) AS reply;
-- Invalid input: "type" null
SELECT pg_temp.stable(es_handle('playbook-h0', '{"type": null, "last_sequence": 0}')) AS reply;
-- Invalid input: "type" a number
SELECT pg_temp.stable(es_handle('playbook-h0', '{"type": 1}')) AS reply;
-- Invalid input: "type" an object
SELECT pg_temp.stable(es_handle('playbook-h0', '{"type": {"name": "sync"}}')) AS reply;
-- Invalid input: an unknown type (the hint listing the types is not part of
-- the reply)
SELECT pg_temp.stable(es_handle('playbook-h0', '{"type": "snapshot"}')) AS reply;
-- Invalid input: types are case-sensitive
SELECT pg_temp.stable(es_handle('playbook-h0', '{"type": "Action", "event_type": "module_add", "data": {}}')) AS reply;
-- nothing was stored: no event, no stream row
SELECT (SELECT count(*) FROM es.events) AS events, (SELECT count(*) FROM es.streams) AS streams;

--
-- 2. action: a validated append; the reply is NULL (the event comes by
-- NOTIFY)
--

-- the first module of playbook-h1, with an event id, by alice
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021001",
         "data": {"moduleId": "m1", "module": {"name": "apt", "params": {"name": "nginx"}}, "position": {"x": 100, "y": 200}}}',
       '1', 'alice')) AS reply;
-- stored as event 1 with the given event id, user id, user name and data,
-- by the current role, without metadata
SELECT sequence_number, event_type, event_id, user_id, username, data,
       metadata, db_role = current_user AS by_current_user
  FROM es.events WHERE stream = 'playbook-h1';
-- without an event id, a user id or a user name: a generated id, NULL user
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_add",
         "data": {"moduleId": "m2", "module": {"name": "template"}, "position": {"x": 100, "y": 320}}}')) AS reply;
-- event 2: a generated event id, no user id, no user name
SELECT * FROM pg_temp.events('playbook-h1') WHERE n = 2;
-- with "expected_version" equal to the stream's version (2): appended as 3
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "link_add", "event_id": "00000000-0000-4000-8000-000000021003",
         "data": {"linkId": "l1", "source": "m1", "target": "m2"}, "expected_version": 2}',
       '2', 'bob')) AS reply;
-- "expected_version" null counts as absent, and an "event_id" in upper
-- case is the same uuid: appended as 4
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-00000002100A",
         "data": {"moduleId": "m2", "position": {"x": 150, "y": 320}}, "expected_version": null}',
       '2', 'bob')) AS reply;
-- "event_id" null counts as absent (a generated id); a NULL user id (an
-- argument of es_handle, from the relay) with a user name: appended as 5
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "event_id": null,
         "data": {"moduleId": "m1", "position": {"x": 90, "y": 200}}}',
       NULL, 'bob')) AS reply;
-- the five events: event 4 has the event id in lower case, event 5 a
-- generated id and a user name without a user id
SELECT * FROM pg_temp.events('playbook-h1');
-- the stream's version is 5
SELECT es_version('playbook-h1') AS version;

-- Invalid input: "expected_version" 1 while the stream is at 5 (40S01)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move",
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}, "expected_version": 1}',
       '1', 'alice')) AS reply;
-- Invalid input: "expected_version" 0 for a stream with events (40S01)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move",
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}, "expected_version": 0}',
       '1', 'alice')) AS reply;
-- Invalid input: a negative "expected_version"
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move",
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}, "expected_version": -1}',
       '1', 'alice')) AS reply;
-- Invalid input: a fractional "expected_version"
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move",
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}, "expected_version": 5.5}',
       '1', 'alice')) AS reply;
-- Invalid input: "expected_version" as a string
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move",
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}, "expected_version": "5"}',
       '1', 'alice')) AS reply;
-- Invalid input: "expected_version" beyond bigint (22003)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move",
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}, "expected_version": 99999999999999999999}',
       '1', 'alice')) AS reply;
-- Invalid input: no "event_type" (README: a missing member is 22023)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}',
       '1', 'alice')) AS reply;
-- Invalid input: "event_type" null, the same as missing
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": null, "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}',
       '1', 'alice')) AS reply;
-- Invalid input: "event_type" a number
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": 7, "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}',
       '1', 'alice')) AS reply;
-- Invalid input: "event_type" an array
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": ["module_move"], "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}',
       '1', 'alice')) AS reply;
-- Invalid input: an empty "event_type"
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "", "data": {}}', '1', 'alice')) AS reply;
-- Invalid input: no "data" (README: a missing member is 22023)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move"}', '1', 'alice')) AS reply;
-- Invalid input: "data" null, the same as missing
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "data": null}', '1', 'alice')) AS reply;
-- Invalid input: "data" an array
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "data": [{"moduleId": "m1"}]}', '1', 'alice')) AS reply;
-- Invalid input: "data" a string
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "data": "m1"}', '1', 'alice')) AS reply;
-- Invalid input: an event type the category does not define (42S01)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_teleport", "data": {"moduleId": "m1"}}', '1', 'alice')) AS reply;
-- Invalid input: data that does not match the type's schema (22S01)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "data": {"moduleId": "m1", "position": {"x": "left", "y": 1}}}',
       '1', 'alice')) AS reply;
-- Invalid input: an effect whose precondition fails (23S02): no module m9
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "data": {"moduleId": "m9", "position": {"x": 1, "y": 1}}}',
       '1', 'alice')) AS reply;
-- Invalid input: a module id already used (23S02)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_add",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 1, "y": 1}}}',
       '1', 'alice')) AS reply;
-- Invalid input: a malformed "event_id" (22P02)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "event_id": "not-a-uuid",
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}', '1', 'alice')) AS reply;
-- Invalid input: "event_id" a number
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "event_id": 21001,
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}', '1', 'alice')) AS reply;
-- Invalid input: an empty user id (an argument of es_handle, from the relay)
SELECT pg_temp.stable(es_handle('playbook-h1',
       '{"type": "action", "event_type": "module_move", "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}',
       '', 'alice')) AS reply;
-- an event over eventsourcing.max_event_size (54000): a limit of 1kB for
-- the next statement, whose reply is shown without its original_action
-- (the whole message), compared with the message instead
SET eventsourcing.max_event_size = '1kB';
-- Invalid input: a module_config of 1161 bytes (54000)
SELECT pg_temp.stable(r) - 'original_action' AS reply,
       r->'original_action' = m AS original_action_is_the_message
  FROM (SELECT m, es_handle('playbook-h1', m, '1', 'alice') AS r
          FROM (SELECT jsonb_build_object('type', 'action', 'event_type', 'module_config',
                                          'data', jsonb_build_object('moduleId', 'm1',
                                                                     'config', jsonb_build_object('content', repeat('x', 1100))))
                       AS m) AS msg) AS t;
-- back to the default limit
RESET eventsourcing.max_event_size;
-- none of the refused actions stored anything: still the five events
SELECT es_version('playbook-h1') AS version, count(*) AS events
  FROM es.events WHERE stream = 'playbook-h1';

--
-- 3. Retries: an action whose event_id is already stored
--

-- alice adds m1, with "expected_version" 0: event 1
SELECT pg_temp.stable(es_handle('playbook-h2',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021201",
         "data": {"moduleId": "m1", "module": {"name": "ping"}, "position": {"x": 1, "y": 2}}, "expected_version": 0}',
       '1', 'alice')) AS reply;
-- alice moves m1, with "expected_version" 1: event 2
SELECT pg_temp.stable(es_handle('playbook-h2',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021202",
         "data": {"moduleId": "m1", "position": {"x": 3, "y": 4}}, "expected_version": 1}',
       '1', 'alice')) AS reply;
-- the same message again (the relay lost the first answer): the reply is
-- the stored event's message, since no NOTIFY will come for it; the
-- "expected_version" 1 is stale now, but the idempotency check comes first;
-- data keys in another order and 3.0 for 3 are the same content
SELECT pg_temp.stable(es_handle('playbook-h2',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021202",
         "data": {"position": {"y": 4, "x": 3.0}, "moduleId": "m1"}, "expected_version": 1}',
       '1', 'alice')) AS reply;
-- the reply is the event message es_sync gives for event 2 (the same
-- timestamp and global position too), and nothing was appended
SELECT es_handle('playbook-h2',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021202",
         "data": {"moduleId": "m1", "position": {"x": 3, "y": 4}}}',
       '1', 'alice') = es_sync('playbook-h2', 1)->'events'->0 AS same_as_sync;
-- the stream still has two events, event 2 with the content of the first
-- attempt
SELECT * FROM pg_temp.events('playbook-h2');
-- Invalid input: the same event id with other data (23S01)
SELECT pg_temp.stable(es_handle('playbook-h2',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021202",
         "data": {"moduleId": "m1", "position": {"x": 5, "y": 6}}}',
       '1', 'alice')) AS reply;
-- Invalid input: the same event id and data by another user (23S01)
SELECT pg_temp.stable(es_handle('playbook-h2',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021202",
         "data": {"moduleId": "m1", "position": {"x": 3, "y": 4}}}',
       '2', 'bob')) AS reply;
-- Invalid input: the same event id with another event type (23S01)
SELECT pg_temp.stable(es_handle('playbook-h2',
       '{"type": "action", "event_type": "module_resize", "event_id": "00000000-0000-4000-8000-000000021202",
         "data": {"moduleId": "m1", "size": {"w": 3, "h": 4}}}',
       '1', 'alice')) AS reply;
-- Invalid input: the same event id and content on another stream (23S01)
SELECT pg_temp.stable(es_handle('playbook-h2b',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021201",
         "data": {"moduleId": "m1", "module": {"name": "ping"}, "position": {"x": 1, "y": 2}}}',
       '1', 'alice')) AS reply;
-- still two events
SELECT * FROM pg_temp.events('playbook-h2');
-- nothing was appended to playbook-h2b either
SELECT es_version('playbook-h2b') AS other_stream_version;

--
-- 4. sync: the events after last_sequence, and the stream's version
--

-- playbook-h3: five events, each its own transaction (distinct times)
SELECT pg_temp.stable(es_handle('playbook-h3',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021301",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- alice moves m1 (2)
SELECT pg_temp.stable(es_handle('playbook-h3',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021302",
         "data": {"moduleId": "m1", "position": {"x": 10, "y": 0}}}', '1', 'alice')) AS reply;
-- bob moves m1 (3)
SELECT pg_temp.stable(es_handle('playbook-h3',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021303",
         "data": {"moduleId": "m1", "position": {"x": 20, "y": 0}}}', '2', 'bob')) AS reply;
-- bob renames the playbook (4)
SELECT pg_temp.stable(es_handle('playbook-h3',
       '{"type": "action", "event_type": "playbook_rename", "event_id": "00000000-0000-4000-8000-000000021304",
         "data": {"name": "Web servers"}}', '2', 'bob')) AS reply;
-- alice moves m1 again (5)
SELECT pg_temp.stable(es_handle('playbook-h3',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021305",
         "data": {"moduleId": "m1", "position": {"x": 30, "y": 0}}}', '1', 'alice')) AS reply;

-- without last_sequence: every event (from 0)
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "sync"}')) AS reply;
-- after event 3
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "sync", "last_sequence": 3}')) AS reply;
-- the reply is es_sync's, with the per-run values too
SELECT es_handle('playbook-h3', '{"type": "sync", "last_sequence": 2}') = es_sync('playbook-h3', 2) AS same_as_es_sync;
-- last_sequence null counts as 0
SELECT jsonb_array_length(es_handle('playbook-h3', '{"type": "sync", "last_sequence": null}')->'events') AS events;
-- up to date: no events
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "sync", "last_sequence": 5}')) AS reply;
-- a client ahead of the stream gets no events and the version
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "sync", "last_sequence": 50}')) AS reply;
-- a stream without events
SELECT pg_temp.stable(es_handle('playbook-h3-empty', '{"type": "sync"}')) AS reply;
-- 1e0 is an integer written otherwise
SELECT jsonb_array_length(es_handle('playbook-h3', '{"type": "sync", "last_sequence": 4e0}')->'events') AS events;
-- Invalid input: a negative last_sequence
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "sync", "last_sequence": -1}')) AS reply;
-- Invalid input: a fractional last_sequence
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "sync", "last_sequence": 2.5}')) AS reply;
-- Invalid input: last_sequence as a string
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "sync", "last_sequence": "2"}')) AS reply;
-- Invalid input: last_sequence a boolean
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "sync", "last_sequence": true}')) AS reply;
-- Invalid input: last_sequence beyond bigint (22003)
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "sync", "last_sequence": 1e30}')) AS reply;

--
-- 5. time_travel: the state after an event
--

-- by target_sequence 0: before the first event, {}
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_sequence": 0}')) AS reply;
-- after event 2: m1 at x 10, no name yet
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_sequence": 2}')) AS reply;
-- after event 5, the last: the name, m1 at x 30
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_sequence": 5}')) AS reply;
-- every sequence number: the state is es_replay's
SELECT n, (r->>'sequence_number')::bigint AS sequence_number, r->'state' = es_replay('playbook-h3', n) AS same_as_replay
  FROM generate_series(0, 5) AS n,
       LATERAL es_handle('playbook-h3', jsonb_build_object('type', 'time_travel', 'target_sequence', n)) AS r;
-- with neither: now (event 5)
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel"}')) AS reply;
-- target_sequence null counts as absent
SELECT es_handle('playbook-h3', '{"type": "time_travel", "target_sequence": null}')->'sequence_number' AS sequence_number;
-- a stream without events: {} at 0
SELECT pg_temp.stable(es_handle('playbook-h3-empty', '{"type": "time_travel"}')) AS reply;

-- by target_time: a time is written in ISO 8601, in UTC
CREATE FUNCTION pg_temp.iso(t timestamptz) RETURNS text
LANGUAGE sql AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;
-- at the created_at of event n, the state after event n; one microsecond
-- before it, the state after event n - 1 (the times are not shown: only
-- the sequence numbers and a comparison of the states with es_replay's)
SELECT e.sequence_number AS n,
       (at_r->>'sequence_number')::bigint AS at_time,
       at_r->'state' = es_replay('playbook-h3', e.sequence_number) AS at_time_state,
       (before_r->>'sequence_number')::bigint AS just_before,
       before_r->'state' = es_replay('playbook-h3', e.sequence_number - 1) AS just_before_state
  FROM es.events e,
       LATERAL es_handle('playbook-h3', jsonb_build_object('type', 'time_travel',
                                                          'target_time', pg_temp.iso(e.created_at))) AS at_r,
       LATERAL es_handle('playbook-h3', jsonb_build_object('type', 'time_travel',
                                                          'target_time', pg_temp.iso(e.created_at - interval '1 microsecond'))) AS before_r
 WHERE e.stream = 'playbook-h3' ORDER BY e.sequence_number;
-- the "timestamp" of an event message (as a client has it) goes back to
-- that event
SELECT (ev->>'sequence_number')::bigint AS n,
       es_handle('playbook-h3', jsonb_build_object('type', 'time_travel', 'target_time', ev->'timestamp'))->'sequence_number' AS at_its_timestamp
  FROM jsonb_array_elements(es_sync('playbook-h3', 0)->'events') AS ev
 ORDER BY 1;
-- a time with an offset: the time of event 3 written in +05:30
SELECT es_handle('playbook-h3',
           jsonb_build_object('type', 'time_travel',
                              'target_time', to_char(created_at AT TIME ZONE interval '+05:30', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+05:30'))
       ->'sequence_number' AS sequence_number
  FROM es.events WHERE stream = 'playbook-h3' AND sequence_number = 3;
-- before the first event: {} at 0
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_time": "2000-01-01T00:00:00Z"}')) AS reply;
-- an hour after the last event: event 5
SELECT es_handle('playbook-h3', jsonb_build_object('type', 'time_travel',
                                                   'target_time', pg_temp.iso(max(created_at) + interval '1 hour')))->'sequence_number' AS sequence_number
  FROM es.events WHERE stream = 'playbook-h3';

-- Invalid input: target_sequence beyond the stream's version
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_sequence": 6}')) AS reply;
-- Invalid input: a negative target_sequence
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_sequence": -1}')) AS reply;
-- Invalid input: a fractional target_sequence
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_sequence": 1.5}')) AS reply;
-- Invalid input: target_sequence as a string
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_sequence": "2"}')) AS reply;
-- Invalid input: target_sequence and target_time both
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_sequence": 2, "target_time": "2026-01-01T00:00:00Z"}')) AS reply;
-- Invalid input: a malformed target_time (22007)
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_time": "yesterday at noon"}')) AS reply;
-- Invalid input: an out-of-range date in target_time (22008)
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_time": "2026-13-45T00:00:00Z"}')) AS reply;
-- Invalid input: an empty target_time
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_time": ""}')) AS reply;
-- Invalid input: target_time a number (epoch seconds)
SELECT pg_temp.stable(es_handle('playbook-h3', '{"type": "time_travel", "target_time": 1767225600}')) AS reply;
-- none of this stored anything
SELECT es_version('playbook-h3') AS version, es_version('playbook-h3-empty') AS empty_version,
       (SELECT count(*) FROM es.events WHERE stream LIKE 'playbook-h3%') AS events;

--
-- 6. undo and redo through the protocol
--

-- playbook-h4: alice adds m1 (1), bob adds m2 (2), alice moves m1 (3)
SELECT pg_temp.stable(es_handle('playbook-h4',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021401",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- bob adds m2 (2)
SELECT pg_temp.stable(es_handle('playbook-h4',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021402",
         "data": {"moduleId": "m2", "module": {"name": "copy"}, "position": {"x": 0, "y": 100}}}', '2', 'bob')) AS reply;
-- alice moves m1 (3)
SELECT pg_temp.stable(es_handle('playbook-h4',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021403",
         "data": {"moduleId": "m1", "position": {"x": 50, "y": 0}}}', '1', 'alice')) AS reply;
-- alice's Undo button (no target_sequence): her last action, the move
-- (es_undo_last); the reply is NULL, the undo event (4) carries the patch
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {}}', '1', 'alice')) AS reply;
-- a sync shows the undo event 4 that the Undo button appended: the move
-- 3 undone, its patch putting m1 back at 0, 0
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "sync", "last_sequence": 3}')) AS reply;
-- m1 is back where it was before the move
SELECT es_replay('playbook-h4')->'modules'->'m1'->'position' AS m1_position;
-- alice's Redo button without "data" at all (es_redo_last): event 5
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "redo"}', '1', 'alice')) AS reply;
-- m1 is where the move put it again
SELECT es_replay('playbook-h4')->'modules'->'m1'->'position' AS m1_position;
-- Invalid input: alice's Redo again: nothing to redo (55S02)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "redo", "data": {}}', '1', 'alice')) AS reply;
-- bob undoes his module_add by number (es_undo of event 2): event 6
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {"target_sequence": 2}}', '2', 'bob')) AS reply;
-- m2 is gone
SELECT es_replay('playbook-h4')->'modules' ? 'm2' AS m2_exists;
-- and redoes it by number (es_redo of undo event 6): event 7
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "redo", "data": {"target_sequence": 6}}', '2', 'bob')) AS reply;
-- m2 is back
SELECT es_replay('playbook-h4')->'modules' ? 'm2' AS m2_exists;
-- "data.target_sequence" null counts as absent: bob's Undo button undoes
-- his last action in effect, the redo 7 (event 8)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {"target_sequence": null}}', '2', 'bob')) AS reply;
-- m2 is gone again
SELECT es_replay('playbook-h4')->'modules' ? 'm2' AS m2_exists;
-- the undo and redo events as stored: users, targets
SELECT sequence_number AS n, event_type, user_id, username, target_sequence AS target,
       (data->>'action_sequence')::bigint AS action, undone
  FROM es.audit WHERE stream = 'playbook-h4' ORDER BY sequence_number;

-- conflicts: bob moves m1 (9), so alice can no longer undo her move of m1
-- or her creation of m1
SELECT pg_temp.stable(es_handle('playbook-h4',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021409",
         "data": {"moduleId": "m1", "position": {"x": 70, "y": 70}}}', '2', 'bob')) AS reply;
-- Invalid input: alice's Undo button: her last action in effect is the
-- redo 5 of her move, and bob moved m1 since (23S03)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {}}', '1', 'alice')) AS reply;
-- Invalid input: alice undoes her module_add 1 by number: her own move 3
-- (in effect again since the redo 5) changed m1 since, the first of the
-- later events that conflict (23S03)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {"target_sequence": 1}}', '1', 'alice')) AS reply;
-- bob's Undo button: his move 9 (event 10)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {}}', '2', 'bob')) AS reply;
-- alice's Undo button now goes through: the redo 5 of her move (event 11)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {}}', '1', 'alice')) AS reply;
-- Invalid input: bob's Redo of his move (the undo 10) would overwrite what
-- alice's undo 11 changed (23S03)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "redo", "data": {}}', '2', 'bob')) AS reply;

-- refusals (55S02)
-- Invalid input: undo of an event already undone (the move 3: undone by
-- 4, redone by 5, undone again by 11)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {"target_sequence": 3}}', '1', 'alice')) AS reply;
-- Invalid input: undo of an undo event
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {"target_sequence": 11}}', '1', 'alice')) AS reply;
-- Invalid input: redo of an event that is not an undo
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "redo", "data": {"target_sequence": 2}}', '2', 'bob')) AS reply;
-- Invalid input: redo of an undo already redone (6: redone by 7, which
-- the undo 8 reverted; 8 is now the latest undo of event 2)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "redo", "data": {"target_sequence": 6}}', '2', 'bob')) AS reply;
-- Invalid input: the Undo button of a user who did nothing here
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {}}', '3', 'carol')) AS reply;
-- Invalid input: the Redo button of a user who undid nothing
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "redo"}', '3', 'carol')) AS reply;
-- Invalid input: undo in a stream without events
SELECT pg_temp.stable(es_handle('playbook-h4-empty', '{"type": "action", "event_type": "undo", "data": {"target_sequence": 1}}', '1', 'alice')) AS reply;
-- other refusals
-- Invalid input: the Undo button without a user id (22004)
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {}}', NULL, 'alice')) AS reply;
-- Invalid input: undo of an event beyond the stream's version
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {"target_sequence": 99}}', '1', 'alice')) AS reply;
-- Invalid input: a negative target_sequence
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {"target_sequence": -3}}', '1', 'alice')) AS reply;
-- Invalid input: a fractional target_sequence
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "redo", "data": {"target_sequence": 6.5}}', '2', 'bob')) AS reply;
-- Invalid input: target_sequence as a string
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": {"target_sequence": "3"}}', '1', 'alice')) AS reply;
-- Invalid input: "data" of an undo an array
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "undo", "data": [3]}', '1', 'alice')) AS reply;
-- Invalid input: "data" of a redo a number
SELECT pg_temp.stable(es_handle('playbook-h4', '{"type": "action", "event_type": "redo", "data": 6}', '2', 'bob')) AS reply;
-- handlefree-1, a category without definitions, takes any event: event 1
SELECT pg_temp.stable(es_handle('handlefree-1', '{"type": "action", "event_type": "note", "data": {"text": "hi"}}', '1', 'alice')) AS reply;
-- Invalid input: undo of event 1 of handlefree-1, whose category has no
-- definitions (55000)
SELECT pg_temp.stable(es_handle('handlefree-1', '{"type": "action", "event_type": "undo", "data": {"target_sequence": 1}}', '1', 'alice')) AS reply;
-- none of the refusals stored anything: still eleven events, one of
-- handlefree-1
SELECT es_version('playbook-h4') AS version, es_version('playbook-h4-empty') AS empty_version,
       es_version('handlefree-1') AS free_version;

-- an undo or redo action is an action like the others: its "event_id" is
-- the undo event's, so that the sender recognises it in the NOTIFY, and a
-- retry of the same message (the relay lost the answer) appends nothing and
-- replies with the stored event.  playbook-h5: alice adds m1 (1) and moves
-- it (2), then presses Undo with event id ...21503 (3 undoes 2)
SELECT pg_temp.stable(es_handle('playbook-h5',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021501",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- alice moves m1 (2)
SELECT pg_temp.stable(es_handle('playbook-h5',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021502",
         "data": {"moduleId": "m1", "position": {"x": 5, "y": 5}}}', '1', 'alice')) AS reply;
-- alice's Undo button, with an event id: the undo event 3 reverts the
-- move 2
SELECT pg_temp.stable(es_handle('playbook-h5',
       '{"type": "action", "event_type": "undo", "event_id": "00000000-0000-4000-8000-000000021503", "data": {}}',
       '1', 'alice')) AS reply;
-- the same Undo message again: no second undo (which would undo the
-- module_add 1), the reply is the undo event's message
SELECT pg_temp.stable(es_handle('playbook-h5',
       '{"type": "action", "event_type": "undo", "event_id": "00000000-0000-4000-8000-000000021503", "data": {}}',
       '1', 'alice')) AS reply;
-- three events: the undo carries the event id of the message, and the
-- retry appended nothing
SELECT n, event_type, event_id, user_id, username FROM pg_temp.events('playbook-h5');
-- m1 is still there (only the move was undone)
SELECT es_replay('playbook-h5')->'modules' ? 'm1' AS m1_exists;

--
-- 7. A deleted stream (55S03) and removed history (55S01)
--

SELECT pg_temp.stable(es_handle('playbook-h6',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021601",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- the stream is deleted
SELECT es_delete_stream('playbook-h6') AS removed;
-- Invalid input: an action on a deleted stream (the detail's time is <time>)
SELECT pg_temp.stable(es_handle('playbook-h6',
       '{"type": "action", "event_type": "module_move", "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}',
       '1', 'alice')) AS reply;
-- Invalid input: the Undo button on a deleted stream
SELECT pg_temp.stable(es_handle('playbook-h6', '{"type": "action", "event_type": "undo", "data": {}}', '1', 'alice')) AS reply;
-- Invalid input: undo by number on a deleted stream
SELECT pg_temp.stable(es_handle('playbook-h6', '{"type": "action", "event_type": "undo", "data": {"target_sequence": 1}}', '1', 'alice')) AS reply;
-- Invalid input: a sync of a deleted stream
SELECT pg_temp.stable(es_handle('playbook-h6', '{"type": "sync", "last_sequence": 1}')) AS reply;
-- Invalid input: time travel to now in a deleted stream
SELECT pg_temp.stable(es_handle('playbook-h6', '{"type": "time_travel"}')) AS reply;
-- Invalid input: time travel by number in a deleted stream
SELECT pg_temp.stable(es_handle('playbook-h6', '{"type": "time_travel", "target_sequence": 0}')) AS reply;
-- Invalid input: time travel by time in a deleted stream
SELECT pg_temp.stable(es_handle('playbook-h6', '{"type": "time_travel", "target_time": "2000-01-01T00:00:00Z"}')) AS reply;
-- the stream stays deleted at version 1: none of this appended anything
SELECT version, deleted_at IS NOT NULL AS deleted FROM es.streams WHERE stream = 'playbook-h6';

-- playbook-h7: four events, compacted up to event 3 (a snapshot there)
SELECT pg_temp.stable(es_handle('playbook-h7',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021701",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- alice moves m1 (2)
SELECT pg_temp.stable(es_handle('playbook-h7',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021702",
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 0}}}', '1', 'alice')) AS reply;
-- alice moves m1 again (3)
SELECT pg_temp.stable(es_handle('playbook-h7',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021703",
         "data": {"moduleId": "m1", "position": {"x": 2, "y": 0}}}', '1', 'alice')) AS reply;
-- a snapshot at event 3, and the compaction removes events 1 to 3
SELECT es_snapshot('playbook-h7') AS snapshot_at, es_compact('playbook-h7') AS removed;
-- alice moves m1 once more (4), after the compaction
SELECT pg_temp.stable(es_handle('playbook-h7',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021704",
         "data": {"moduleId": "m1", "position": {"x": 3, "y": 0}}}', '1', 'alice')) AS reply;
-- from the compaction point on, everything answers
SELECT pg_temp.stable(es_handle('playbook-h7', '{"type": "sync", "last_sequence": 3}')) AS reply;
-- time travel to the compaction point, event 3
SELECT pg_temp.stable(es_handle('playbook-h7', '{"type": "time_travel", "target_sequence": 3}')) AS reply;
-- time travel to now, event 4
SELECT pg_temp.stable(es_handle('playbook-h7', '{"type": "time_travel"}')) AS reply;
-- the time of event 4: event 4
SELECT es_handle('playbook-h7', jsonb_build_object('type', 'time_travel', 'target_time', pg_temp.iso(created_at)))->'sequence_number' AS sequence_number
  FROM es.events WHERE stream = 'playbook-h7' AND sequence_number = 4;
-- Invalid input: time travel to event 2, removed by the compaction
SELECT pg_temp.stable(es_handle('playbook-h7', '{"type": "time_travel", "target_sequence": 2}')) AS reply;
-- Invalid input: time travel to a time before the compaction base (the
-- time of the removed event 1, from es.removals; shown as <time>)
SELECT jsonb_set(pg_temp.stable(es_handle('playbook-h7', jsonb_build_object('type', 'time_travel',
                                                                           'target_time', pg_temp.iso(first_created_at)))),
                 '{original_action,target_time}', '"<time>"') AS reply
  FROM es.removals WHERE stream = 'playbook-h7';
-- Invalid input: a sync from before the compaction base
SELECT pg_temp.stable(es_handle('playbook-h7', '{"type": "sync", "last_sequence": 1}')) AS reply;
-- Invalid input: a sync without last_sequence (from 0)
SELECT pg_temp.stable(es_handle('playbook-h7', '{"type": "sync"}')) AS reply;
-- Invalid input: undo of a removed event
SELECT pg_temp.stable(es_handle('playbook-h7', '{"type": "action", "event_type": "undo", "data": {"target_sequence": 2}}', '1', 'alice')) AS reply;
-- still at version 4: none of the refusals appended anything
SELECT es_version('playbook-h7') AS version;

--
-- 8. After an error reply the caller's transaction goes on
--

-- an error reply, then a successful action, in one transaction: only the
-- successful one is stored, as event 1
BEGIN;
-- Invalid input: alice moves m1, which does not exist yet (23S02)
SELECT pg_temp.stable(es_handle('playbook-h8',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021800",
         "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}', '1', 'alice')) AS reply;
-- alice adds m1 in the same transaction (the reply is NULL)
SELECT pg_temp.stable(es_handle('playbook-h8',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021801",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- the transaction commits
COMMIT;
-- one event: the module_add, as event 1
SELECT * FROM pg_temp.events('playbook-h8');
-- the failed action's event id was not used: it can be used now
SELECT count(*) AS with_failed_id FROM es.events WHERE event_id = '00000000-0000-4000-8000-000000021800';

-- a success, an error reply, a success, the first one retried, reads and
-- an error reply of every other message type, in one transaction: the
-- second success validates against the state of the first, the retry of
-- an event of this very transaction replies NULL (its NOTIFY comes at
-- commit), and the events are numbered without a gap
BEGIN;
-- bob adds m2: event 2
SELECT pg_temp.stable(es_handle('playbook-h8',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021802",
         "data": {"moduleId": "m2", "module": {"name": "copy"}, "position": {"x": 0, "y": 100}}}', '2', 'bob')) AS reply;
-- Invalid input: bob links m1 to m9, which does not exist (23S02)
SELECT pg_temp.stable(es_handle('playbook-h8',
       '{"type": "action", "event_type": "link_add", "event_id": "00000000-0000-4000-8000-000000021803",
         "data": {"linkId": "l1", "source": "m1", "target": "m9"}}', '2', 'bob')) AS reply;
-- bob links m1 to m2, which needs the m2 of event 2: event 3
SELECT pg_temp.stable(es_handle('playbook-h8',
       '{"type": "action", "event_type": "link_add", "event_id": "00000000-0000-4000-8000-000000021804",
         "data": {"linkId": "l1", "source": "m1", "target": "m2"}}', '2', 'bob')) AS reply;
-- bob's first message again: a retry of event 2, appended in this very
-- transaction (NULL)
SELECT pg_temp.stable(es_handle('playbook-h8',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021802",
         "data": {"moduleId": "m2", "module": {"name": "copy"}, "position": {"x": 0, "y": 100}}}', '2', 'bob')) AS reply;
-- a sync in the transaction sees events 2 and 3
SELECT pg_temp.stable(es_handle('playbook-h8', '{"type": "sync", "last_sequence": 1}')) AS reply;
-- time travel to now in the transaction: m1, m2 and the link
SELECT pg_temp.stable(es_handle('playbook-h8', '{"type": "time_travel"}')) AS reply;
-- Invalid input: a sync from a negative sequence number, in the transaction
SELECT pg_temp.stable(es_handle('playbook-h8', '{"type": "sync", "last_sequence": -5}')) AS reply;
-- Invalid input: time travel beyond the version, in the transaction
SELECT pg_temp.stable(es_handle('playbook-h8', '{"type": "time_travel", "target_sequence": 9}')) AS reply;
-- Invalid input: carol's Undo button, nothing to undo, in the transaction
SELECT pg_temp.stable(es_handle('playbook-h8', '{"type": "action", "event_type": "undo", "data": {}}', '3', 'carol')) AS reply;
-- the transaction is still usable
SELECT 'still usable' AS transaction;
-- and commits
COMMIT;
-- three events, numbered without a gap: the failed link_add took no
-- sequence number
SELECT * FROM pg_temp.events('playbook-h8');
-- the failed link_add's id was never stored
SELECT count(*) AS with_failed_id FROM es.events WHERE event_id = '00000000-0000-4000-8000-000000021803';

-- an action rolled back with its transaction is not stored
BEGIN;
-- bob moves m2, then the transaction rolls back
SELECT pg_temp.stable(es_handle('playbook-h8',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021805",
         "data": {"moduleId": "m2", "position": {"x": 9, "y": 9}}}', '2', 'bob')) AS reply;
-- the rollback
ROLLBACK;
-- still at version 3
SELECT es_version('playbook-h8') AS version;

--
-- 9. NOTIFY: a successful action is announced on es_playbook to every
-- listener, the sender's own relay included.  A LISTEN in this session
-- would make psql print "Asynchronous notification ... received from server
-- process with PID n": a process id, different in every run.  So the
-- listener is a second session (dblink), as in 006_notify and 019_undo, and
-- it waits for a given event id rather than for a marker NOTIFY, which
-- makes it independent of the notify mode (commit or worker)
--
CREATE EXTENSION dblink;
-- the listener: a second session of the same database
SELECT dblink_connect('listener',
           format('dbname=%L port=%s user=%L', current_database(),
                  current_setting('port'), current_user)
           || coalesce(' host=' || nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), ''))
       AS connected;
-- it listens on the channel of category playbook
SELECT dblink_exec('listener', 'LISTEN es_playbook');
-- what it receives
CREATE TEMP TABLE received (n serial, channel text, payload jsonb);
-- collect the notifications until the one of event_id has arrived
CREATE PROCEDURE pg_temp.receive(event_id text)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 3000 LOOP
        INSERT INTO received (channel, payload)
        SELECT notify_name, extra::jsonb FROM dblink_get_notify('listener');
        IF EXISTS (SELECT FROM received WHERE payload->>'event_id' = event_id) THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RAISE NOTICE 'event % not announced', event_id;
END
$$;

-- an action: announced with its event id
SELECT pg_temp.stable(es_handle('playbook-h9',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021901",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- the listener receives it
CALL pg_temp.receive('00000000-0000-4000-8000-000000021901');
-- one notification: the event message of event 1
SELECT channel, pg_temp.stable(payload) AS payload FROM received ORDER BY n;
-- the payload is the event's message as a sync gives it (per-run values
-- too)
SELECT r.payload = es_handle('playbook-h9', '{"type": "sync", "last_sequence": 0}')->'events'->0 AS same_as_sync
  FROM received r;
-- start over
TRUNCATE received;
-- a refused action, a retry of the first and an undo by number, then one
-- more action: the refused action and the retry are not announced, the
-- undo (its data with the patch) and the last action are
-- Invalid input: alice moves m9, which does not exist (23S02)
SELECT pg_temp.stable(es_handle('playbook-h9',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021902",
         "data": {"moduleId": "m9", "position": {"x": 1, "y": 1}}}', '1', 'alice')) AS reply;
-- the retry of event 1: replied with the stored event message
SELECT pg_temp.stable(es_handle('playbook-h9',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021901",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- bob undoes event 1 by number: event 2
SELECT pg_temp.stable(es_handle('playbook-h9',
       '{"type": "action", "event_type": "undo", "data": {"target_sequence": 1}}', '2', 'bob')) AS reply;
-- bob renames the playbook: event 3, with an event id to wait for
SELECT pg_temp.stable(es_handle('playbook-h9',
       '{"type": "action", "event_type": "playbook_rename", "event_id": "00000000-0000-4000-8000-000000021903",
         "data": {"name": "Site"}}', '2', 'bob')) AS reply;
-- wait for the rename
CALL pg_temp.receive('00000000-0000-4000-8000-000000021903');
-- two notifications, the undo and the rename: none for the refused
-- action, none for the retry
SELECT channel, pg_temp.stable(payload) AS payload FROM received ORDER BY n;
-- start over
TRUNCATE received;
-- an event too large for NOTIFY (8000 bytes or more) is announced without
-- data and with "truncated": true; the client fetches it with a sync from
-- its sequence number minus one
SELECT pg_temp.stable(es_handle('playbook-h9',
           jsonb_build_object('type', 'action', 'event_type', 'variable_add',
                              'event_id', '00000000-0000-4000-8000-000000021904',
                              'data', jsonb_build_object('name', 'motd', 'value', repeat('m', 9000))),
           '1', 'alice')) AS reply;
-- wait for it
CALL pg_temp.receive('00000000-0000-4000-8000-000000021904');
-- the notification: no data, "truncated": true
SELECT channel, pg_temp.stable(payload) AS payload FROM received ORDER BY n;
-- a sync from its sequence number minus one gives the whole event
SELECT length(ev->'data'->>'value') AS value_length, ev ? 'truncated' AS truncated
  FROM received r,
       LATERAL jsonb_array_elements(es_handle('playbook-h9',
           jsonb_build_object('type', 'sync', 'last_sequence', (r.payload->>'sequence_number')::bigint - 1))->'events') AS ev;

--
-- 10. A retry writes nothing: it does not make the caller's transaction a
-- writing one (no transaction id), so an append later in the same
-- transaction is not held to the order check of a transaction that wrote
-- before its append (README, Concurrency guarantees: 40001), just as after
-- an es_append that returns a stored event.  In one transaction: a retry
-- of event 1 of playbook-h2, then the second session appends to
-- playbook-h11 (and commits), then this session appends to playbook-h11.
--
SELECT pg_temp.stable(es_handle('playbook-h11',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021b01",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- in one transaction:
BEGIN;
-- the retry of event 1 of playbook-h2: its stored event message
SELECT pg_temp.stable(es_handle('playbook-h2',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021201",
         "data": {"moduleId": "m1", "module": {"name": "ping"}, "position": {"x": 1, "y": 2}}}',
       '1', 'alice')) AS reply;
-- the transaction has no transaction id yet
SELECT txid_current_if_assigned() IS NULL AS no_transaction_id;
-- the second session appends event 2 of playbook-h11 and commits
SELECT * FROM dblink('listener',
           $$SELECT sequence_number FROM es_append('playbook-h11', 'module_move',
                                                   '{"moduleId": "m1", "position": {"x": 5, "y": 5}}',
                                                   event_id => '00000000-0000-4000-8000-000000021b02',
                                                   user_id => '2', username => 'bob')$$) AS t(sequence_number bigint);
-- this session appends event 3 of playbook-h11: no 40001
SELECT pg_temp.stable(es_handle('playbook-h11',
       '{"type": "action", "event_type": "module_move", "event_id": "00000000-0000-4000-8000-000000021b03",
         "data": {"moduleId": "m1", "position": {"x": 9, "y": 9}}}', '1', 'alice')) AS reply;
-- the transaction commits
COMMIT;
-- three events
SELECT * FROM pg_temp.events('playbook-h11');

-- the listener goes, with dblink and what it received
SELECT dblink_disconnect('listener');
DROP EXTENSION dblink;
DROP TABLE received;

--
-- 11. Server-side errors are raised, not replied
--
-- two roles: regress_es_handle_reader may read the events and the
-- streams, regress_es_handle_nobody nothing
CREATE ROLE regress_es_handle_reader;
CREATE ROLE regress_es_handle_nobody;
GRANT USAGE ON SCHEMA es TO regress_es_handle_reader;
GRANT SELECT ON es.events, es.streams TO regress_es_handle_reader;
-- one event in playbook-h10, appended by the owner
SELECT pg_temp.stable(es_handle('playbook-h10',
       '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021a01",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;

-- a role without any privilege on es: every message type raises 42501
SET ROLE regress_es_handle_nobody;
-- Invalid input: an action without privileges (raised)
CALL pg_temp.expect_error($$SELECT es_handle('playbook-h10', '{"type": "action", "event_type": "module_move", "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}', '1', 'alice')$$);
-- Invalid input: a sync without privileges (raised)
CALL pg_temp.expect_error($$SELECT es_handle('playbook-h10', '{"type": "sync"}')$$);
-- Invalid input: a time travel without privileges (raised)
CALL pg_temp.expect_error($$SELECT es_handle('playbook-h10', '{"type": "time_travel"}')$$);
-- Invalid input: a time travel by time without privileges (raised)
CALL pg_temp.expect_error($$SELECT es_handle('playbook-h10', '{"type": "time_travel", "target_time": "2000-01-01T00:00:00Z"}')$$);
-- Invalid input: an undo without privileges (raised)
CALL pg_temp.expect_error($$SELECT es_handle('playbook-h10', '{"type": "action", "event_type": "undo", "data": {}}', '1', 'alice')$$);
-- a malformed message is still the client's error: replied, since nothing
-- needed a privilege yet
SELECT pg_temp.stable(es_handle('playbook-h10', '{"type": "subscribe"}')) AS reply;
-- back to the owner
RESET ROLE;

-- a role that may read but not append: sync and time travel answer, an
-- action raises 42501
SET ROLE regress_es_handle_reader;
-- a sync answers
SELECT pg_temp.stable(es_handle('playbook-h10', '{"type": "sync"}')) AS reply;
-- a time travel answers
SELECT pg_temp.stable(es_handle('playbook-h10', '{"type": "time_travel"}')) AS reply;
-- Invalid input: an action without INSERT on es.events (raised)
CALL pg_temp.expect_error($$SELECT es_handle('playbook-h10', '{"type": "action", "event_type": "module_move", "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}', '1', 'alice')$$);
-- raised means the caller's transaction is aborted, as for any SQL error
BEGIN;
-- a sync answers in the transaction
SELECT pg_temp.stable(es_handle('playbook-h10', '{"type": "sync", "last_sequence": 1}')) AS reply;
-- Invalid input: an action without INSERT on es.events, outside expect_error
SELECT es_handle('playbook-h10', '{"type": "action", "event_type": "module_move", "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}', '1', 'alice');
-- the next statement fails: the transaction is aborted
SELECT pg_temp.stable(es_handle('playbook-h10', '{"type": "sync", "last_sequence": 1}')) AS reply;
-- it ends
ROLLBACK;
-- back to the owner
RESET ROLE;

-- a read-only transaction (a hot standby alike): sync and time travel
-- answer, an action raises 25006
BEGIN READ ONLY;
-- a sync answers
SELECT pg_temp.stable(es_handle('playbook-h10', '{"type": "sync"}')) AS reply;
-- a time travel answers
SELECT pg_temp.stable(es_handle('playbook-h10', '{"type": "time_travel", "target_sequence": 1}')) AS reply;
-- Invalid input: an action in a read-only transaction (raised)
CALL pg_temp.expect_error($$SELECT es_handle('playbook-h10', '{"type": "action", "event_type": "module_move", "data": {"moduleId": "m1", "position": {"x": 1, "y": 1}}}', '1', 'alice')$$);
-- Invalid input: a retry in a read-only transaction (raised)
CALL pg_temp.expect_error($$SELECT es_handle('playbook-h10', '{"type": "action", "event_type": "module_add", "event_id": "00000000-0000-4000-8000-000000021a01", "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')$$);
-- the read-only transaction ends
ROLLBACK;
-- nothing was stored by any of them
SELECT * FROM pg_temp.events('playbook-h10');

-- the roles go
DROP OWNED BY regress_es_handle_reader, regress_es_handle_nobody;
DROP ROLE regress_es_handle_reader;
DROP ROLE regress_es_handle_nobody;

--
-- Members a message type does not have are refused, so that a misspelt
-- member is never silently ignored (stream playbook-h12)
--
-- Invalid input: a misspelt "expected_version" in an action
SELECT pg_temp.stable(es_handle('playbook-h12', '{"type": "action", "event_type": "module_add", "expected_verison": 0, "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}}', '1', 'alice')) AS reply;
-- Invalid input: a member of an action in a sync
SELECT pg_temp.stable(es_handle('playbook-h12', '{"type": "sync", "last_sequence": 0, "event_type": "module_add"}')) AS reply;
-- Invalid input: a member of a sync in a time_travel
SELECT pg_temp.stable(es_handle('playbook-h12', '{"type": "time_travel", "last_sequence": 0}')) AS reply;
-- Invalid input: an undo with "expected_version"
SELECT pg_temp.stable(es_handle('playbook-h12', '{"type": "action", "event_type": "undo", "expected_version": 1}', '1', 'alice')) AS reply;
-- nothing was stored
SELECT * FROM pg_temp.events('playbook-h12');
