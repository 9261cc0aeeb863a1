--
-- 008_playbook_scenario: a session of the collaborative playbook editor.
-- alice (user 1) and bob (user 2) edit playbook 42; the backend validates,
-- persists and numbers their actions; a client that reconnects catches up
-- with es_sync; concurrent edits are resolved with expected_version.
--
\i test/sql/include/expect_error.sql

-- alice opens the playbook and builds it
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'play_add',
                 '{"playId": "p1", "name": "Deploy web", "hosts": "webservers"}',
                 expected_version => 0,
                 event_id => '00000000-0000-4000-8000-000000042001',
                 user_id => '1', username => 'alice');
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'module_add',
                 '{"moduleId": "m1", "module": {"name": "apt", "params": {"name": "nginx", "state": "present"}}, "position": {"x": 100, "y": 200}}',
                 event_id => '00000000-0000-4000-8000-000000042002',
                 user_id => '1', username => 'alice');
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'module_add',
                 '{"moduleId": "m2", "module": {"name": "template", "params": {"src": "nginx.conf.j2", "dest": "/etc/nginx/nginx.conf"}}, "position": {"x": 100, "y": 320}}',
                 event_id => '00000000-0000-4000-8000-000000042003',
                 user_id => '1', username => 'alice');
-- bob joins and adds a module
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'module_add',
                 '{"moduleId": "m3", "module": {"name": "service", "params": {"name": "nginx", "state": "started"}}, "position": {"x": 100, "y": 440}}',
                 event_id => '00000000-0000-4000-8000-000000042004',
                 user_id => '2', username => 'bob');
-- alice moves m2 and links the modules
SELECT sequence_number, event_type, username
  FROM es_append_batch('playbook-42', $$[
        {"event_type": "module_move", "data": {"moduleId": "m2", "position": {"x": 300, "y": 120}},
         "event_id": "00000000-0000-4000-8000-000000042005", "user_id": "1", "username": "alice"},
        {"event_type": "link_add", "data": {"linkId": "l1", "from": "m1", "to": "m2"},
         "event_id": "00000000-0000-4000-8000-000000042006", "user_id": "1", "username": "alice"},
        {"event_type": "link_add", "data": {"linkId": "l2", "from": "m2", "to": "m3"},
         "event_id": "00000000-0000-4000-8000-000000042007", "user_id": "1", "username": "alice"}
       ]$$);
-- bob's client disconnects after event 4; meanwhile alice keeps editing
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'play_update', '{"playId": "p1", "become": true}',
                 event_id => '00000000-0000-4000-8000-000000042008',
                 user_id => '1', username => 'alice');
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'variable_add', '{"name": "nginx_port", "value": 8080}',
                 event_id => '00000000-0000-4000-8000-000000042009',
                 user_id => '1', username => 'alice');

-- bob reconnects: he has applied events up to 4
SELECT (e->>'sequence_number')::int AS seq, e->>'event_type' AS event_type,
       e->>'username' AS username, e->'data' AS data
  FROM jsonb_array_elements(es_sync('playbook-42', 4)->'events') AS e;
SELECT es_sync('playbook-42', 4)->'current_sequence' AS current_sequence;

-- both clients now believe the playbook is at version 9 and act at once;
-- each sends its action with the version it has seen
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'module_config',
                 '{"moduleId": "m3", "config": {"notify": "restart nginx"}}',
                 expected_version => 9,
                 event_id => '00000000-0000-4000-8000-000000042010',
                 user_id => '1', username => 'alice');
-- Invalid input: bob's action arrives second, at the same expected version
CALL pg_temp.expect_error($$SELECT es_append('playbook-42', 'module_resize', '{"moduleId": "m3", "size": {"w": 240, "h": 96}}', expected_version => 9, event_id => '00000000-0000-4000-8000-000000042011', user_id => '2', username => 'bob')$$);
-- bob's client catches up from 9, then resends its action at version 10
SELECT (e->>'sequence_number')::int AS seq, e->>'event_type' AS event_type, e->>'username' AS username
  FROM jsonb_array_elements(es_sync('playbook-42', 9)->'events') AS e;
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'module_resize',
                 '{"moduleId": "m3", "size": {"w": 240, "h": 96}}',
                 expected_version => 10,
                 event_id => '00000000-0000-4000-8000-000000042011',
                 user_id => '2', username => 'bob');
-- the reply was lost; bob's client resends the same action: nothing new
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'module_resize',
                 '{"moduleId": "m3", "size": {"w": 240, "h": 96}}',
                 expected_version => 10,
                 event_id => '00000000-0000-4000-8000-000000042011',
                 user_id => '2', username => 'bob');

-- more edits, including a deletion and an undo by an inverse event
SELECT sequence_number, event_type, username
  FROM es_append_batch('playbook-42', $$[
        {"event_type": "role_add", "data": {"roleId": "r1", "name": "geerlingguy.nginx"}, "user_id": "2", "username": "bob",
         "event_id": "00000000-0000-4000-8000-000000042012"},
        {"event_type": "link_delete", "data": {"linkId": "l2"}, "user_id": "2", "username": "bob",
         "event_id": "00000000-0000-4000-8000-000000042013"},
        {"event_type": "module_delete", "data": {"moduleId": "m3"}, "user_id": "2", "username": "bob",
         "event_id": "00000000-0000-4000-8000-000000042014"},
        {"event_type": "module_add", "data": {"moduleId": "m3", "module": {"name": "service", "params": {"name": "nginx", "state": "started"}}, "position": {"x": 100, "y": 440}},
         "metadata": {"undo_of": 14}, "user_id": "2", "username": "bob",
         "event_id": "00000000-0000-4000-8000-000000042015"}
       ]$$, expected_version => 11);
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'variable_update', '{"name": "nginx_port", "value": 80}',
                 event_id => '00000000-0000-4000-8000-000000042016', user_id => '1', username => 'alice');
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'block_collapse', '{"blockId": "b1", "collapsed": true}',
                 event_id => '00000000-0000-4000-8000-000000042017', user_id => '2', username => 'bob');
SELECT sequence_number, event_type, username
  FROM es_append('playbook-42', 'playbook_rename', '{"name": "Web servers"}',
                 event_id => '00000000-0000-4000-8000-000000042018', user_id => '1', username => 'alice');

-- another playbook is numbered on its own
SELECT sequence_number, event_type, username
  FROM es_append('playbook-43', 'play_add', '{"playId": "p1", "name": "Backup"}',
                 user_id => '2', username => 'bob');

-- the complete log: gapless, in order, one row per action
SELECT sequence_number, event_type, username, user_id, event_id
  FROM es_read('playbook-42');
SELECT es_version('playbook-42') AS version,
       count(*) AS events,
       min(sequence_number) AS first, max(sequence_number) AS last,
       count(DISTINCT sequence_number) AS distinct_sequences
  FROM es_read('playbook-42');

-- audit trail: who did what
SELECT username, count(*) AS actions, string_agg(DISTINCT event_type, ', ' ORDER BY event_type) AS types
  FROM es_read('playbook-42') GROUP BY username ORDER BY username;

-- time travel: the modules present after event 9, and now, by replaying
-- the stream's prefix (es_read with max_count)
CREATE FUNCTION pg_temp.modules_at(s text, upto int)
RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(m, ',' ORDER BY m)
      FROM (SELECT data->>'moduleId' AS m,
                   (array_agg(event_type ORDER BY sequence_number DESC))[1] AS last_event
              FROM es_read(s, 0, upto)
             WHERE event_type IN ('module_add', 'module_delete')
             GROUP BY data->>'moduleId') x
     WHERE last_event = 'module_add'
$$;
SELECT pg_temp.modules_at('playbook-42', 9) AS at_9,
       pg_temp.modules_at('playbook-42', 14) AS at_14,
       pg_temp.modules_at('playbook-42', 18) AS now;
-- the last position of m2
SELECT data->'position' AS m2_position
  FROM es_read('playbook-42')
 WHERE event_type IN ('module_add', 'module_move') AND data->>'moduleId' = 'm2'
 ORDER BY sequence_number DESC LIMIT 1;

-- a client that has everything gets an empty batch
SELECT es_sync('playbook-42', 18) AS up_to_date;
-- a new client gets the whole history in one message
SELECT jsonb_array_length(s->'events') AS events, s->'current_sequence' AS current_sequence,
       s->'events'->-1->>'event_type' AS last_type
  FROM es_sync('playbook-42', 0) AS s;
