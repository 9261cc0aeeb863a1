--
-- 002_append_batch: es_append_batch, atomic appends of a JSON array of events
--
\i test/sql/include/expect_error.sql

--
-- A batch on a new stream, every key of an element used
--
SELECT stream, category, sequence_number, event_type, data, metadata,
       event_id, user_id, username
  FROM es_append_batch('playbook-20', $$[
        {"event_type": "module_add",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 10, "y": 20}},
         "metadata": {"client": "editor"},
         "event_id": "00000000-0000-4000-8000-000000002001",
         "user_id": "1", "username": "alice"},
        {"event_type": "module_add",
         "data": {"moduleId": "m2", "module": {"name": "service"}, "position": {"x": 10, "y": 90}},
         "event_id": "00000000-0000-4000-8000-000000002002",
         "user_id": "1", "username": "alice"},
        {"event_type": "link_add",
         "data": {"linkId": "l1", "from": "m1", "to": "m2"},
         "event_id": "00000000-0000-4000-8000-000000002003",
         "user_id": "2", "username": "bob"}
       ]$$, expected_version => 0);

-- one transaction, positions in sequence order
SELECT count(DISTINCT transaction_id) AS transactions,
       array_agg(global_position ORDER BY sequence_number)
           = array_agg(global_position ORDER BY global_position) AS positions_in_order
  FROM es.events WHERE stream = 'playbook-20';
SELECT stream, version FROM es.streams WHERE stream = 'playbook-20';

-- optional keys absent or null: generated event id, no metadata or users
SELECT sequence_number, event_type, data, metadata, user_id, username,
       event_id IS NOT NULL AS has_id
  FROM es_append_batch('playbook-20', $$[
        {"event_type": "module_move", "data": {"moduleId": "m1", "position": {"x": 30, "y": 20}}},
        {"event_type": "module_move", "data": {"moduleId": "m2", "position": {"x": 30, "y": 90}},
         "metadata": null, "event_id": null, "user_id": null, "username": null}
       ]$$);

-- a batch of one, at the right expected version
SELECT sequence_number, event_type
  FROM es_append_batch('playbook-20', '[{"event_type": "play_update", "data": {"hosts": "web"}}]',
                       expected_version => 5);

-- Invalid input: a batch at the wrong expected version stores nothing
CALL pg_temp.expect_error($$SELECT es_append_batch('playbook-20', '[{"event_type": "a", "data": {}}, {"event_type": "b", "data": {}}]', expected_version => 3)$$);
-- Invalid input: expected_version 0 on an existing stream
CALL pg_temp.expect_error($$SELECT es_append_batch('playbook-20', '[{"event_type": "a", "data": {}}]', expected_version => 0)$$);
SELECT es_version('playbook-20') AS version;

--
-- All or nothing: a failing element undoes the elements before it
--
-- Invalid input: the third element's data is not an object
CALL pg_temp.expect_error($$SELECT es_append_batch('playbook-21', '[{"event_type": "a", "data": {}}, {"event_type": "b", "data": {}}, {"event_type": "c", "data": [1]}]')$$);
SELECT es_version('playbook-21') AS version,
       (SELECT count(*) FROM es.events WHERE stream = 'playbook-21') AS events,
       (SELECT count(*) FROM es.streams WHERE stream = 'playbook-21') AS stream_rows;

-- the same failure outside of the helper, as a client sees it
SELECT sequence_number
  FROM es_append_batch('playbook-21', '[{"event_type": "a", "data": {}}, {"event_type": "b", "data": "x"}]');
SELECT es_version('playbook-21') AS version;

-- inside a transaction the error aborts the transaction; nothing survives
BEGIN;
SELECT sequence_number FROM es_append('playbook-21', 'first', '{}');
SELECT sequence_number
  FROM es_append_batch('playbook-21', '[{"event_type": "a", "data": {}}, {"event_type": "b"}]');
COMMIT;
SELECT es_version('playbook-21') AS version;

-- a batch in a rolled-back transaction leaves no gap
BEGIN;
SELECT sequence_number
  FROM es_append_batch('playbook-21', '[{"event_type": "a", "data": {}}, {"event_type": "b", "data": {}}]');
ROLLBACK;
SELECT sequence_number, event_type
  FROM es_append_batch('playbook-21', '[{"event_type": "c", "data": {}}, {"event_type": "d", "data": {}}]',
                       expected_version => 0);

--
-- event_id retries
--
-- the whole batch again: the stored events come back, nothing is appended
SELECT sequence_number, event_type, event_id
  FROM es_append_batch('playbook-20', $$[
        {"event_type": "module_add",
         "data": {"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 10, "y": 20}},
         "metadata": {"client": "editor"},
         "event_id": "00000000-0000-4000-8000-000000002001",
         "user_id": "1", "username": "alice"},
        {"event_type": "module_add",
         "data": {"moduleId": "m2", "module": {"name": "service"}, "position": {"x": 10, "y": 90}},
         "event_id": "00000000-0000-4000-8000-000000002002",
         "user_id": "1", "username": "alice"},
        {"event_type": "link_add",
         "data": {"linkId": "l1", "from": "m1", "to": "m2"},
         "event_id": "00000000-0000-4000-8000-000000002003",
         "user_id": "2", "username": "bob"}
       ]$$, expected_version => 0);
SELECT es_version('playbook-20') AS version;

-- a retried batch that grew: the known events come back, the new one is
-- appended after the stream's current version
SELECT sequence_number, event_type, event_id
  FROM es_append_batch('playbook-22', $$[
        {"event_type": "variable_add", "data": {"name": "port", "value": 80},
         "event_id": "00000000-0000-4000-8000-000000002201"},
        {"event_type": "variable_add", "data": {"name": "user", "value": "www"},
         "event_id": "00000000-0000-4000-8000-000000002202"}
       ]$$, expected_version => 0);
SELECT sequence_number, event_type, event_id
  FROM es_append_batch('playbook-22', $$[
        {"event_type": "variable_add", "data": {"name": "port", "value": 80},
         "event_id": "00000000-0000-4000-8000-000000002201"},
        {"event_type": "variable_add", "data": {"name": "user", "value": "www"},
         "event_id": "00000000-0000-4000-8000-000000002202"},
        {"event_type": "variable_update", "data": {"name": "port", "value": 8080},
         "event_id": "00000000-0000-4000-8000-000000002203"}
       ]$$, expected_version => 0);
SELECT es_version('playbook-22') AS version;

-- an id repeated inside one batch is a retry of the earlier element
SELECT sequence_number, event_type, event_id
  FROM es_append_batch('playbook-23', $$[
        {"event_type": "role_add", "data": {"role": "nginx"},
         "event_id": "00000000-0000-4000-8000-000000002301"},
        {"event_type": "role_add", "data": {"role": "nginx"},
         "event_id": "00000000-0000-4000-8000-000000002301"},
        {"event_type": "role_update", "data": {"role": "nginx", "tags": ["web"]},
         "event_id": "00000000-0000-4000-8000-000000002302"}
       ]$$);
SELECT es_version('playbook-23') AS version;

-- Invalid input: a reused id with other content fails the whole batch
CALL pg_temp.expect_error($$SELECT es_append_batch('playbook-23', '[{"event_type": "role_delete", "data": {"role": "x"}}, {"event_type": "role_add", "data": {"role": "apache"}, "event_id": "00000000-0000-4000-8000-000000002301"}]')$$);
SELECT es_version('playbook-23') AS version;

-- the rows returned are the stored rows
CREATE TEMP TABLE batch_rows AS
SELECT * FROM es_append_batch('playbook-24', '[{"event_type": "a", "data": {"n": 1}}, {"event_type": "b", "data": {"n": 2}}]');
SELECT count(*) AS matching
  FROM batch_rows b JOIN es.events e ON (b.*)::text = (e.*)::text;

-- a repeated id inside a batch with expected_version: the version is checked
-- on the first event only, the repeat appends nothing, the rest follow
SELECT sequence_number, event_type
  FROM es_append_batch('playbook-90', $$[
        {"event_type": "a", "data": {}, "event_id": "00000000-0000-4000-8000-0000000090a1"},
        {"event_type": "a", "data": {}, "event_id": "00000000-0000-4000-8000-0000000090a1"},
        {"event_type": "b", "data": {}}
       ]$$, expected_version => 0);
SELECT es_version('playbook-90') AS version;

-- Invalid input: a retried batch whose first event is stored, while the
-- stream moved on since: the next event must follow the repeated one
SELECT sequence_number FROM es_append('playbook-92', 'a', '{}',
                                      event_id => '00000000-0000-4000-8000-0000000092a1');
SELECT sequence_number FROM es_append('playbook-92', 'other', '{}');
CALL pg_temp.expect_error($$SELECT es_append_batch('playbook-92', '[{"event_type": "a", "data": {}, "event_id": "00000000-0000-4000-8000-0000000092a1"}, {"event_type": "b", "data": {}}]', expected_version => 0)$$);
SELECT es_version('playbook-92') AS version;
