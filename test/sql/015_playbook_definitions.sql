--
-- 015_playbook_definitions: the playbook editor's events as definitions
-- (examples/playbook.sql).  Every event type is appended and its effect shown
-- with es_replay; every broken rule is refused (23S02 precondition, 22S01
-- schema, 42S01 unknown type) and stores nothing; time travel with
-- es_replay(stream, n); es_replay_all over the category.
--
-- Earlier files left events in category "playbook": start from a fresh
-- extension.
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
SELECT event_type, jsonb_array_length(effect) AS steps,
       (SELECT string_agg(step->>'op', ', ' ORDER BY n)
          FROM jsonb_array_elements(effect) WITH ORDINALITY AS s(step, n)) AS ops,
       schema->'required' AS required
  FROM es.event_types WHERE category = 'playbook' ORDER BY event_type;

-- a stream's state starts empty
SELECT es_replay('playbook-1') AS empty_state;

--
-- Every event type and its effect
--

-- playbook_rename: the name, and the five containers
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'playbook_rename', '{"name": "Web servers"}', user_id => '1', username => 'alice');
SELECT es_replay('playbook-1');

-- play_add
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'play_add', '{"playId": "p1", "name": "Deploy web", "hosts": "webservers"}', user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'play_add', '{"playId": "p2", "name": "Backup", "hosts": ["db1", "db2"]}', user_id => '2', username => 'bob');
SELECT es_replay('playbook-1')->'plays' AS plays;

-- play_update: merged into the play; null removes an attribute
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'play_update', '{"playId": "p1", "become": true, "hosts": null, "name": "Deploy nginx"}', user_id => '1', username => 'alice');
SELECT es_replay('playbook-1')->'plays'->'p1' AS p1;

-- play_delete
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'play_delete', '{"playId": "p2"}', user_id => '2', username => 'bob');
SELECT es_replay('playbook-1')->'plays' AS plays;

-- module_add: the module is the event's data, with an empty config
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_add', '{"moduleId": "m1", "module": {"name": "apt", "params": {"name": "nginx"}}, "position": {"x": 100, "y": 200}}', user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_add', '{"moduleId": "m2", "module": {"name": "template"}, "position": {"x": 100, "y": 320}, "config": {"src": "nginx.conf.j2"}}', user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_add', '{"moduleId": "m3", "module": {"name": "service"}, "position": {"x": 100, "y": 440}}', user_id => '2', username => 'bob');
-- a block is a module too
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_add', '{"moduleId": "b1", "module": {"name": "block"}, "position": {"x": 400, "y": 100}, "size": {"w": 300, "h": 200}}', user_id => '2', username => 'bob');
SELECT jsonb_pretty(es_replay('playbook-1')->'modules') AS modules;

-- module_move
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_move', '{"moduleId": "m2", "position": {"x": 300, "y": 120.5}}', user_id => '2', username => 'bob');
SELECT es_replay('playbook-1')->'modules'->'m2'->'position' AS m2_position;

-- module_config: merged into the config; null removes a parameter
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_config', '{"moduleId": "m2", "config": {"dest": "/etc/nginx/nginx.conf", "mode": "0644"}}', user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_config', '{"moduleId": "m2", "config": {"mode": null, "owner": "root"}}', user_id => '2', username => 'bob');
SELECT es_replay('playbook-1')->'modules'->'m2'->'config' AS m2_config;

-- module_resize
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_resize', '{"moduleId": "m3", "size": {"w": 240, "h": 96}}', user_id => '2', username => 'bob');
SELECT es_replay('playbook-1')->'modules'->'m3' AS m3;

-- block_collapse: folds, then unfolds, the block module
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'block_collapse', '{"blockId": "b1", "collapsed": true}', user_id => '1', username => 'alice');
SELECT es_replay('playbook-1')->'modules'->'b1'->'collapsed' AS b1_collapsed;
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'block_collapse', '{"blockId": "b1", "collapsed": false}', user_id => '2', username => 'bob');
SELECT es_replay('playbook-1')->'modules'->'b1'->'collapsed' AS b1_collapsed;

-- link_add: m1 -> m2 -> m3 -> m1, and b1 -> m3
SELECT sequence_number, event_type
  FROM es_append_batch('playbook-1', $$[
        {"event_type": "link_add", "data": {"linkId": "l1", "source": "m1", "target": "m2"}, "user_id": "1", "username": "alice"},
        {"event_type": "link_add", "data": {"linkId": "l2", "source": "m2", "target": "m3"}, "user_id": "1", "username": "alice"},
        {"event_type": "link_add", "data": {"linkId": "l3", "source": "m3", "target": "m1"}, "user_id": "1", "username": "alice"},
        {"event_type": "link_add", "data": {"linkId": "l4", "source": "b1", "target": "m3"}, "user_id": "2", "username": "bob"}
       ]$$);
SELECT key AS link, value->>'source' AS source, value->>'target' AS target
  FROM jsonb_each(es_replay('playbook-1')->'links') ORDER BY key;

-- link_delete
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'link_delete', '{"linkId": "l4"}', user_id => '2', username => 'bob');
SELECT key AS link, value->>'source' AS source, value->>'target' AS target
  FROM jsonb_each(es_replay('playbook-1')->'links') ORDER BY key;

-- variable_add, variable_update, variable_delete: any JSON value
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'variable_add', '{"name": "nginx_port", "value": 8080}', user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'variable_add', '{"name": "packages", "value": ["nginx", "curl"]}', user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'variable_add', '{"name": "debug/level", "value": null}', user_id => '2', username => 'bob');
SELECT es_replay('playbook-1')->'variables' AS variables;
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'variable_update', '{"name": "nginx_port", "value": 80}', user_id => '2', username => 'bob');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'variable_delete', '{"name": "debug/level"}', user_id => '2', username => 'bob');
SELECT es_replay('playbook-1')->'variables' AS variables;

-- role_add, role_update, role_delete
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'role_add', '{"roleId": "r1", "name": "geerlingguy.nginx"}', user_id => '2', username => 'bob');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'role_add', '{"roleId": "r2", "name": "common"}', user_id => '2', username => 'bob');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'role_update', '{"roleId": "r1", "version": "3.1.0"}', user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'role_delete', '{"roleId": "r2"}', user_id => '1', username => 'alice');
SELECT es_replay('playbook-1')->'roles' AS roles;

-- module_delete: removes m2 and both links that refer to it (l1 into it,
-- l2 out of it); l3 (m3 -> m1) stays
SELECT key AS link, value->>'source' AS source, value->>'target' AS target
  FROM jsonb_each(es_replay('playbook-1')->'links') ORDER BY key;
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_delete', '{"moduleId": "m2"}', user_id => '2', username => 'bob');
SELECT key AS link, value->>'source' AS source, value->>'target' AS target
  FROM jsonb_each(es_replay('playbook-1')->'links') ORDER BY key;
SELECT string_agg(k, ',' ORDER BY k) AS modules FROM jsonb_object_keys(es_replay('playbook-1')->'modules') AS k;
-- deleting a module without links removes only the module
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_add', '{"moduleId": "m4", "module": {"name": "debug"}, "position": {"x": 0, "y": 0}}', user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append('playbook-1', 'module_delete', '{"moduleId": "m4"}', user_id => '1', username => 'alice');
SELECT key AS link, value->>'source' AS source, value->>'target' AS target
  FROM jsonb_each(es_replay('playbook-1')->'links') ORDER BY key;
SELECT string_agg(k, ',' ORDER BY k) AS modules FROM jsonb_object_keys(es_replay('playbook-1')->'modules') AS k;

-- the whole state now
SELECT es_version('playbook-1') AS version;
SELECT jsonb_pretty(es_replay('playbook-1')) AS state;

--
-- Rejections: nothing is stored
--

-- Invalid input: adding a module that exists
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_add', '{"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}')$$);
-- Invalid input: moving a module that does not exist
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_move', '{"moduleId": "m9", "position": {"x": 0, "y": 0}}')$$);
-- Invalid input: moving a module that was deleted
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_move', '{"moduleId": "m2", "position": {"x": 0, "y": 0}}')$$);
-- Invalid input: configuring, resizing, deleting a module that does not exist
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_config', '{"moduleId": "m9", "config": {"a": 1}}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_resize', '{"moduleId": "m9", "size": {"w": 1, "h": 1}}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_delete', '{"moduleId": "m9"}')$$);
-- Invalid input: collapsing a block that does not exist
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'block_collapse', '{"blockId": "b9", "collapsed": true}')$$);
-- Invalid input: a link to a missing module (target), from a missing module
-- (source), to the deleted module m2
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'link_add', '{"linkId": "l9", "source": "m1", "target": "m9"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'link_add', '{"linkId": "l9", "source": "m9", "target": "m1"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'link_add', '{"linkId": "l9", "source": "m3", "target": "m2"}')$$);
-- Invalid input: a link id that is taken
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'link_add', '{"linkId": "l3", "source": "m1", "target": "m3"}')$$);
-- Invalid input: deleting a link that does not exist (l1 went with m2)
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'link_delete', '{"linkId": "l1"}')$$);
-- Invalid input: plays, variables and roles that exist / do not exist
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'play_add', '{"playId": "p1", "name": "Again"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'play_update', '{"playId": "p2", "name": "Gone"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'play_delete', '{"playId": "p2"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'variable_add', '{"name": "nginx_port", "value": 443}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'variable_update', '{"name": "debug/level", "value": 1}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'variable_delete', '{"name": "nope"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'role_add', '{"roleId": "r1", "name": "again"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'role_update', '{"roleId": "r2", "name": "gone"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'role_delete', '{"roleId": "r2"}')$$);
-- Invalid input: an event type the category does not define
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_rotate', '{"moduleId": "m1", "angle": 90}')$$);
-- Invalid input: data that does not match the schema
-- (a missing required member, a wrong type, an empty id, a wrong nested type)
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_add', '{"moduleId": "m5", "module": {"name": "ping"}}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_add', '{"moduleId": 5, "module": {"name": "ping"}, "position": {"x": 0, "y": 0}}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_add', '{"moduleId": "m5", "module": {}, "position": {"x": 0, "y": 0}}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_move', '{"moduleId": "m1", "position": {"x": "100", "y": 0}}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'module_config', '{"moduleId": "m1", "config": ["a"]}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'link_add', '{"linkId": "l9", "source": "m1"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'block_collapse', '{"blockId": "b1", "collapsed": "yes"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'playbook_rename', '{"name": ""}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'play_update', '{"playId": "p1", "name": null}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-1', 'variable_add', '{"name": "x"}')$$);
-- Invalid input: a batch whose second event fails stores neither: m5 is not
-- added
CALL pg_temp.expect_error($$SELECT es_append_batch('playbook-1', '[
        {"event_type": "module_add", "data": {"moduleId": "m5", "module": {"name": "ping"}, "position": {"x": 0, "y": 0}}},
        {"event_type": "link_add", "data": {"linkId": "l5", "source": "m5", "target": "m9"}}
       ]')$$);
-- Invalid input: a plain INSERT is held to the same rules
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('playbook-1', 'module_move', '{"moduleId": "m9", "position": {"x": 0, "y": 0}}')$$);
-- nothing was stored: same version, same state
SELECT es_version('playbook-1') AS version,
       (SELECT max(sequence_number) FROM es.events WHERE stream = 'playbook-1') AS last_event,
       es_replay('playbook-1')->'modules' ? 'm5' AS has_m5;

--
-- Time travel: the state after each event
--
SELECT e.sequence_number AS n, e.event_type,
       s->>'name' AS name,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(s->'plays') AS k) AS plays,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(s->'modules') AS k) AS modules,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(s->'links') AS k) AS links,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(s->'variables') AS k) AS variables,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(s->'roles') AS k) AS roles
  FROM es_read('playbook-1') AS e,
       LATERAL es_replay('playbook-1', e.sequence_number) AS s
 ORDER BY e.sequence_number;
-- the seed's time_travel answer at a few points
SELECT es_replay('playbook-1', 0) AS at_0;
SELECT es_replay('playbook-1', 3) AS at_3;
-- module m2 after its module_add (9) and after its move and configs (12)
SELECT n, es_replay('playbook-1', n)->'modules'->'m2'->'position' AS m2_position,
       es_replay('playbook-1', n)->'modules'->'m2'->'config' AS m2_config
  FROM (VALUES (9), (12)) AS v(n);
-- the state at the current version is the default
SELECT es_replay('playbook-1', es_version('playbook-1')) = es_replay('playbook-1') AS same;

--
-- Replay all: every playbook of the category
--
SELECT sequence_number, event_type
  FROM es_append('playbook-2', 'module_add', '{"moduleId": "m1", "module": {"name": "ping"}, "position": {"x": 10, "y": 20}}', user_id => '2', username => 'bob');
SELECT sequence_number, event_type
  FROM es_append('playbook-2', 'playbook_rename', '{"name": "Ping all"}', user_id => '2', username => 'bob');
-- a third playbook whose only event was refused has no events: not listed
CALL pg_temp.expect_error($$SELECT es_append('playbook-3', 'module_delete', '{"moduleId": "m1"}')$$);
SELECT stream, version, state->>'name' AS name,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(state->'modules') AS k) AS modules,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(state->'links') AS k) AS links
  FROM es_replay_all('playbook');
SELECT state FROM es_replay_all('playbook') WHERE stream = 'playbook-2';
