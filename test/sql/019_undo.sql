--
-- 019_undo: undo and redo in the playbook category (examples/playbook.sql).
-- Every op kind of the vocabulary is undone and redone, with the state
-- before, after, after the undo and after the redo; chains of undo and redo
-- of one action with es.audit at each step; per-user undo with
-- es_undo_last / es_redo_last over two interleaved users; conflicts
-- (23S03); every refusal with its SQLSTATE; the NOTIFY of an undo received
-- by a second session (dblink); audit queries over es.audit.
-- Streams playbook-u1 .. playbook-u6 and playbook-u-none (category
-- "playbook"), undonodefs-1 (a category without definitions), undolate-1
-- (a category defined after its first event).
--
-- Earlier files left events in category "playbook": start from a fresh
-- extension.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS eventsourcing CASCADE;
CREATE EXTENSION eventsourcing;
RESET client_min_messages;
\i test/sql/include/expect_error.sql
-- expect_refusal(query): as expect_error, without the hint
CREATE PROCEDURE pg_temp.expect_refusal(query text)
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
    v_detail text;
BEGIN
    BEGIN
        EXECUTE query;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE,
                                v_message = MESSAGE_TEXT,
                                v_detail = PG_EXCEPTION_DETAIL;
        RAISE NOTICE '%', v_state || ': ' || v_message
            || coalesce(E'\n  detail: ' || nullif(v_detail, ''), '');
        RETURN;
    END;
    RAISE NOTICE 'unexpected success: %', query;
END
$$;

-- load the definitions (the file's own output is not shown; an error would be)
\set ECHO none
\o /dev/null
\i examples/playbook.sql
\o
\set ECHO all
SELECT count(*) AS playbook_types FROM es.event_types WHERE category = 'playbook';

-- undo the latest event of a stream (an action) as its own user, then redo
-- that undo; one row per step: the part of the state asked for, the patch
-- of the undo / redo event, and which state the whole state equals
-- ('before' the action, 'after' it, 'both' when the action changed
-- nothing, or 'other'); show_patch => false leaves the patches out
CREATE FUNCTION pg_temp.which(now jsonb, before jsonb, after jsonb) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE WHEN now = before AND now = after THEN 'both'
                WHEN now = before THEN 'before'
                WHEN now = after THEN 'after'
                ELSE 'other' END
$$;
CREATE FUNCTION pg_temp.undo_redo(s text, part text[] DEFAULT '{}', show_patch boolean DEFAULT true)
RETURNS TABLE (step text, n bigint, type text, patch jsonb, part_state jsonb, state_is text)
LANGUAGE plpgsql AS $$
DECLARE
    a es.events;
    u es.events;
    r es.events;
    v_before jsonb;
    v_after jsonb;
    v_now jsonb;
BEGIN
    SELECT * INTO a FROM es_read(s) AS e ORDER BY e.sequence_number DESC LIMIT 1;
    v_before := es_replay(s, a.sequence_number - 1);
    v_after := es_replay(s);
    step := 'before'; n := a.sequence_number - 1; type := NULL; patch := NULL;
    part_state := v_before #> part; state_is := NULL;
    RETURN NEXT;
    step := 'action'; n := a.sequence_number; type := a.event_type;
    part_state := v_after #> part;
    RETURN NEXT;
    u := es_undo(s, a.sequence_number, a.user_id, a.username);
    v_now := es_replay(s);
    step := 'undo'; n := u.sequence_number; type := u.event_type;
    patch := CASE WHEN show_patch THEN u.data->'patch' END;
    part_state := v_now #> part;
    state_is := pg_temp.which(v_now, v_before, v_after);
    RETURN NEXT;
    r := es_redo(s, u.sequence_number, a.user_id, a.username);
    v_now := es_replay(s);
    step := 'redo'; n := r.sequence_number; type := r.event_type;
    patch := CASE WHEN show_patch THEN r.data->'patch' END;
    part_state := v_now #> part;
    state_is := pg_temp.which(v_now, v_before, v_after);
    RETURN NEXT;
END
$$;

-- a stream's events as es.audit shows them (no per-run values)
CREATE FUNCTION pg_temp.audit(s text)
RETURNS TABLE (n bigint, event_type text, username text, target bigint, action bigint,
               undone_by bigint, undone boolean)
LANGUAGE sql AS $$
    SELECT a.sequence_number, a.event_type, a.username, a.target_sequence,
           (a.data->>'action_sequence')::bigint, a.undone_by, a.undone
      FROM es.audit a WHERE a.stream = s ORDER BY a.sequence_number
$$;

--
-- 1. Every op kind of the vocabulary: undo, then redo
--

-- module_add, the first event of the playbook: shown in full.  The undo
-- removes the module but leaves the five empty containers the action
-- created, so the state after the undo is not {} but the containers; the
-- redo adds the module back
SELECT es_replay('playbook-u1') AS before_state;
SELECT sequence_number, event_type, user_id, username
  FROM es_append('playbook-u1', 'module_add',
                 '{"moduleId": "m1", "module": {"name": "apt", "params": {"name": "nginx"}}, "position": {"x": 100, "y": 200}}',
                 user_id => '1', username => 'alice');
SELECT es_replay('playbook-u1') AS after_state \gset
SELECT :'after_state'::jsonb AS after_state;
SELECT sequence_number, event_type, user_id, username, jsonb_pretty(data) AS data
  FROM es_undo('playbook-u1', 1, '1', 'alice');
SELECT es_replay('playbook-u1') AS after_undo;
SELECT es_replay('playbook-u1') = '{}' AS same_as_before,
       es_replay('playbook-u1') = '{"modules": {}, "links": {}, "plays": {}, "variables": {}, "roles": {}}' AS empty_containers;
SELECT sequence_number, event_type, user_id, username, jsonb_pretty(data) AS data
  FROM es_redo('playbook-u1', 2, '1', 'alice');
SELECT es_replay('playbook-u1') AS after_redo;
SELECT es_replay('playbook-u1') = :'after_state'::jsonb AS same_as_after;
-- time travel goes through the undo and the redo
SELECT n, es_replay('playbook-u1', n) AS state FROM generate_series(0, 3) AS n;

-- module_add of a module with config and size, into the existing containers
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'module_add',
                 '{"moduleId": "m2", "module": {"name": "template"}, "position": {"x": 100, "y": 320}, "size": {"w": 10, "h": 20}, "config": {"src": "a.j2"}}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{modules,m2}');
-- a block, kept as it is
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'module_add',
                 '{"moduleId": "b1", "module": {"name": "block"}, "position": {"x": 400, "y": 100}}',
                 user_id => '2', username => 'bob');

-- module_move
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'module_move', '{"moduleId": "m1", "position": {"x": 300, "y": 120.5}}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{modules,m1,position}');

-- module_config: a merge into the empty config adds two keys
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'module_config', '{"moduleId": "m1", "config": {"dest": "/etc/nginx/nginx.conf", "mode": "0644"}}',
                 user_id => '2', username => 'bob');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{modules,m1,config}');
-- module_config: a null member removes "mode", "owner" is added, "dest"
-- replaced; the undo puts "mode" back, removes "owner", restores "dest"
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'module_config', '{"moduleId": "m1", "config": {"mode": null, "owner": "root", "dest": "/tmp/nginx.conf"}}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{modules,m1,config}');
-- a null member for a key that is not there changes nothing: empty patch
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'module_config', '{"moduleId": "m1", "config": {"group": null}}',
                 user_id => '2', username => 'bob');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{modules,m1,config}');

-- module_resize: a first size is added, a second one replaces it
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'module_resize', '{"moduleId": "m1", "size": {"w": 240, "h": 96}}',
                 user_id => '2', username => 'bob');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{modules,m1,size}');
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'module_resize', '{"moduleId": "m2", "size": {"w": 50, "h": 60}}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{modules,m2,size}');

-- block_collapse: folded (added), then unfolded (replaced)
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'block_collapse', '{"blockId": "b1", "collapsed": true}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{modules,b1,collapsed}');
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'block_collapse', '{"blockId": "b1", "collapsed": false}',
                 user_id => '2', username => 'bob');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{modules,b1,collapsed}');

-- link_add
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'link_add', '{"linkId": "l1", "source": "m1", "target": "m2"}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{links}');
-- more links: m2 -> b1, b1 -> m1, m1 -> b1
SELECT sequence_number, event_type
  FROM es_append_batch('playbook-u1', $$[
        {"event_type": "link_add", "data": {"linkId": "l2", "source": "m2", "target": "b1"}, "user_id": "2", "username": "bob"},
        {"event_type": "link_add", "data": {"linkId": "l3", "source": "b1", "target": "m1"}, "user_id": "2", "username": "bob"},
        {"event_type": "link_add", "data": {"linkId": "l4", "source": "m1", "target": "b1"}, "user_id": "2", "username": "bob"}
       ]$$);

-- link_delete
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'link_delete', '{"linkId": "l4"}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{links}');

-- module_delete: m2 goes with the links into it (l1) and out of it (l2);
-- l3 stays.  The undo brings back the module AND both links, the redo
-- removes them again
SELECT es_replay('playbook-u1') AS before_delete \gset
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'module_delete', '{"moduleId": "m2"}',
                 user_id => '2', username => 'bob');
SELECT es_replay('playbook-u1') AS after_delete \gset
CREATE TEMP TABLE seen (step text, state jsonb);
INSERT INTO seen VALUES ('before', :'before_delete'), ('module_delete', :'after_delete');
SELECT sequence_number, event_type, jsonb_pretty(data) AS data
  FROM es_undo('playbook-u1', es_version('playbook-u1'), '2', 'bob');
INSERT INTO seen VALUES ('undo', es_replay('playbook-u1'));
SELECT sequence_number, event_type, jsonb_pretty(data->'patch') AS patch
  FROM es_redo('playbook-u1', es_version('playbook-u1'), '2', 'bob');
INSERT INTO seen VALUES ('redo', es_replay('playbook-u1'));
SELECT step,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(state->'modules') AS k) AS modules,
       (SELECT string_agg(k || ':' || (v->>'source') || '->' || (v->>'target'), ' ' ORDER BY k)
          FROM jsonb_each(state->'links') AS l(k, v)) AS links,
       state = :'before_delete'::jsonb AS same_as_before,
       state = :'after_delete'::jsonb AS same_as_after
  FROM seen;
-- the module comes back whole
SELECT state->'modules'->'m2' AS m2_after_undo FROM seen WHERE step = 'undo';
SELECT (SELECT state FROM seen WHERE step = 'undo')->'modules'->'m2' = :'before_delete'::jsonb->'modules'->'m2' AS m2_restored;
DROP TABLE seen;

-- play_add, play_update (a merge: "hosts": null removes the hosts, "become"
-- is added, "name" replaced), play_delete
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'play_add', '{"playId": "p1", "name": "Deploy web", "hosts": ["web1", "web2"]}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{plays}');
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'play_update', '{"playId": "p1", "hosts": null, "become": true, "name": "Deploy nginx"}',
                 user_id => '2', username => 'bob');
-- (the patches are not shown: see the play's state)
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{plays,p1}', show_patch => false);
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'play_delete', '{"playId": "p1"}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{plays}');

-- variable_add (a name that needs escaping in a path; a null value),
-- variable_update, variable_delete
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'variable_add', '{"name": "debug/level~1", "value": {"level": 3}}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{variables}');
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'variable_add', '{"name": "unset", "value": null}',
                 user_id => '2', username => 'bob');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{variables}');
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'variable_update', '{"name": "debug/level~1", "value": [1, 2]}',
                 user_id => '2', username => 'bob');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{variables}');
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'variable_delete', '{"name": "debug/level~1"}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{variables}');

-- role_add, role_update (a merge), role_delete
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'role_add', '{"roleId": "r1", "name": "geerlingguy.nginx"}',
                 user_id => '2', username => 'bob');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{roles}');
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'role_update', '{"roleId": "r1", "version": "3.1.0", "name": "nginx"}',
                 user_id => '1', username => 'alice');
-- (the patches are not shown: see the role's state)
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{roles,r1}', show_patch => false);
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'role_delete', '{"roleId": "r1"}',
                 user_id => '2', username => 'bob');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{roles}');

-- playbook_rename: the first name is added, the second replaces it
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'playbook_rename', '{"name": "Web servers"}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{name}');
SELECT sequence_number, event_type
  FROM es_append('playbook-u1', 'playbook_rename', '{"name": "Web servers (prod)"}',
                 user_id => '2', username => 'bob');
SELECT * FROM pg_temp.undo_redo('playbook-u1', '{name}');

-- every op kind was undone and redone
SELECT e.event_type, count(*) AS actions, count(u.*) AS undone_once, count(r.*) AS redone_once
  FROM es.events e
  LEFT JOIN es.events u ON u.stream = e.stream AND u.event_type = 'undo'
                       AND (u.data->>'target_sequence')::bigint = e.sequence_number
  LEFT JOIN es.events r ON r.stream = e.stream AND r.event_type = 'redo'
                       AND (r.data->>'target_sequence')::bigint = u.sequence_number
 WHERE e.stream = 'playbook-u1' AND e.event_type NOT IN ('undo', 'redo')
 GROUP BY e.event_type ORDER BY e.event_type;
-- nothing is undone now, the stream is healthy, and its final state
SELECT count(*) FILTER (WHERE undone) AS undone_now, count(*) AS events
  FROM es.audit WHERE stream = 'playbook-u1';
SELECT * FROM es_verify('playbook-u1');
SELECT jsonb_pretty(es_replay('playbook-u1')) AS state;

--
-- 2. Chains: undo, redo, undo, redo of one action
--
SELECT sequence_number, event_type
  FROM es_append('playbook-u2', 'module_add', '{"moduleId": "m1", "module": {"name": "ping"}, "position": {"x": 0, "y": 0}}',
                 user_id => '1', username => 'alice');
SELECT sequence_number, event_type
  FROM es_append('playbook-u2', 'module_move', '{"moduleId": "m1", "position": {"x": 10, "y": 10}}',
                 user_id => '1', username => 'alice');
SELECT * FROM pg_temp.audit('playbook-u2');
-- the add cannot be undone while the move is in effect: the move (alice's
-- own) changed the module since (23S03)
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u2', 1)$$);

-- undo the move (3)
SELECT sequence_number, event_type, data FROM es_undo('playbook-u2', 2, '1', 'alice');
SELECT es_replay('playbook-u2')->'modules'->'m1'->'position' AS position;
SELECT * FROM pg_temp.audit('playbook-u2');
-- Invalid input: undo twice; the detail names the undo
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u2', 2)$$);
-- Invalid input: undo an undo (use es_redo)
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u2', 3)$$);
-- Invalid input: redo an event that is not an undo
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u2', 2)$$);
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u2', 1)$$);

-- redo it (4)
SELECT sequence_number, event_type, data FROM es_redo('playbook-u2', 3, '1', 'alice');
SELECT es_replay('playbook-u2')->'modules'->'m1'->'position' AS position;
SELECT * FROM pg_temp.audit('playbook-u2');
-- Invalid input: redo twice
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u2', 3)$$);
-- Invalid input: the move was undone and redone since: undo the redo
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u2', 2)$$);
-- Invalid input: a redo is not an undo
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u2', 4)$$);

-- undo the redo (5): the chain goes on for action 2
SELECT sequence_number, event_type, data FROM es_undo('playbook-u2', 4, '1', 'alice');
SELECT es_replay('playbook-u2')->'modules'->'m1'->'position' AS position;
SELECT * FROM pg_temp.audit('playbook-u2');
-- Invalid input: the redo is already undone
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u2', 4)$$);
-- Invalid input: undo 3 is not the latest undo of its action any more
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u2', 3)$$);

-- redo again (6), undo the second redo (7)
SELECT sequence_number, event_type, data FROM es_redo('playbook-u2', 5, '1', 'alice');
SELECT es_replay('playbook-u2')->'modules'->'m1'->'position' AS position;
SELECT * FROM pg_temp.audit('playbook-u2');
SELECT sequence_number, event_type, data FROM es_undo('playbook-u2', 6, '1', 'alice');
SELECT es_replay('playbook-u2')->'modules'->'m1'->'position' AS position;
SELECT * FROM pg_temp.audit('playbook-u2');
-- Invalid input: the older undos and redos of the chain cannot be toggled
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u2', 5)$$);
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u2', 6)$$);
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u2', 2)$$);
-- es_redo of the latest undo (8)
SELECT sequence_number, event_type, data FROM es_redo('playbook-u2', 7, '1', 'alice');
SELECT es_replay('playbook-u2')->'modules'->'m1'->'position' AS position;
SELECT * FROM pg_temp.audit('playbook-u2');
-- once the move is undone again (9), the add can be undone (10): the later
-- action undone now, with its whole chain, is ignored
SELECT sequence_number, event_type, data->'target_sequence' AS target FROM es_undo('playbook-u2', 8, '1', 'alice');
SELECT sequence_number, event_type, data FROM es_undo('playbook-u2', 1, '1', 'alice');
SELECT es_replay('playbook-u2') AS state;
SELECT * FROM pg_temp.audit('playbook-u2');
-- the state at each point of the chain
SELECT e.sequence_number AS n, e.event_type, es_replay('playbook-u2', e.sequence_number)->'modules'->'m1'->'position' AS position
  FROM es_read('playbook-u2') AS e ORDER BY 1;
SELECT * FROM es_verify('playbook-u2');

--
-- 3. Per-user undo: alice and bob interleaved in one stream
--
SELECT sequence_number, event_type, username
  FROM es_append_batch('playbook-u3', $$[
        {"event_type": "module_add", "data": {"moduleId": "a", "module": {"name": "apt"}, "position": {"x": 0, "y": 0}}, "user_id": "1", "username": "alice"},
        {"event_type": "module_add", "data": {"moduleId": "b", "module": {"name": "yum"}, "position": {"x": 0, "y": 0}}, "user_id": "2", "username": "bob"},
        {"event_type": "playbook_rename", "data": {"name": "Alice's"}, "user_id": "1", "username": "alice"},
        {"event_type": "module_move", "data": {"moduleId": "b", "position": {"x": 2, "y": 2}}, "user_id": "2", "username": "bob"},
        {"event_type": "variable_add", "data": {"name": "va", "value": "alice"}, "user_id": "1", "username": "alice"},
        {"event_type": "variable_add", "data": {"name": "vb", "value": "bob"}, "user_id": "2", "username": "bob"}
       ]$$);
-- the state, compactly: name, modules (with positions), variables
CREATE FUNCTION pg_temp.st(s text)
RETURNS TABLE (name text, modules text, variables text)
LANGUAGE sql AS $$
    SELECT st->>'name',
           (SELECT string_agg(k || '@' || (v->'position'->>'x') || CASE WHEN v ? 'size' THEN '+size' ELSE '' END,
                              ',' ORDER BY k)
              FROM jsonb_each(st->'modules') AS m(k, v)),
           (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(st->'variables') AS k)
      FROM es_replay(s) AS st
$$;
SELECT * FROM pg_temp.st('playbook-u3');

-- alice undoes her variable (7), bob his variable (8), alice her rename
-- (9): each only their own actions, latest first
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_undo_last('playbook-u3', '1', 'alice');
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_undo_last('playbook-u3', '2', 'bob');
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_undo_last('playbook-u3', '1', 'alice');
SELECT * FROM pg_temp.st('playbook-u3');
-- alice redoes her last undo (the rename, 10), then undoes again: what she
-- undoes is that redo (11)
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_redo_last('playbook-u3', '1', 'alice');
SELECT * FROM pg_temp.st('playbook-u3');
SELECT sequence_number, event_type, username, data->'target_sequence' AS target,
       data->'action_sequence' AS action
  FROM es_undo_last('playbook-u3', '1', 'alice');
-- alice undoes her module_add (12)
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_undo_last('playbook-u3', '1', 'alice');
SELECT * FROM pg_temp.st('playbook-u3');
-- alice has nothing left to undo; carol never did anything
CALL pg_temp.expect_error($$SELECT es_undo_last('playbook-u3', '1', 'alice')$$);
CALL pg_temp.expect_error($$SELECT es_undo_last('playbook-u3', '3', 'carol')$$);
CALL pg_temp.expect_error($$SELECT es_redo_last('playbook-u3', '3', 'carol')$$);
-- bob undoes his move (13)
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_undo_last('playbook-u3', '2', 'bob');
SELECT * FROM pg_temp.st('playbook-u3');
-- alice redoes in reverse order of her undos: the add (14)
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_redo_last('playbook-u3', '1', 'alice');
SELECT * FROM pg_temp.st('playbook-u3');
-- bob acts again (15): his redo stack is cleared ...
SELECT sequence_number, event_type, username
  FROM es_append('playbook-u3', 'module_resize', '{"moduleId": "b", "size": {"w": 5, "h": 5}}',
                 user_id => '2', username => 'bob');
CALL pg_temp.expect_error($$SELECT es_redo_last('playbook-u3', '2', 'bob')$$);
-- ... but not alice's: her rename (16), then her variable (17), then
-- nothing
SELECT sequence_number, event_type, username, data->'target_sequence' AS target,
       data->'action_sequence' AS action
  FROM es_redo_last('playbook-u3', '1', 'alice');
SELECT sequence_number, event_type, username, data->'target_sequence' AS target,
       data->'action_sequence' AS action
  FROM es_redo_last('playbook-u3', '1', 'alice');
CALL pg_temp.expect_error($$SELECT es_redo_last('playbook-u3', '1', 'alice')$$);
SELECT * FROM pg_temp.st('playbook-u3');
-- bob undoes his resize (18), then his add (19): his move and resize of
-- "b" are undone now, so they do not stand in the way
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_undo_last('playbook-u3', '2', 'bob');
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_undo_last('playbook-u3', '2', 'bob');
SELECT * FROM pg_temp.st('playbook-u3');
-- alice's latest action in effect is her redo of the variable (17): her
-- undo now undoes that redo (20)
SELECT sequence_number, event_type, username, data->'target_sequence' AS target,
       data->'action_sequence' AS action
  FROM es_undo_last('playbook-u3', '1', 'alice');
-- a new action of alice (21) clears her redo stack
SELECT sequence_number, event_type, username
  FROM es_append('playbook-u3', 'playbook_rename', '{"name": "Mine"}', user_id => '1', username => 'alice');
CALL pg_temp.expect_error($$SELECT es_redo_last('playbook-u3', '1', 'alice')$$);
-- bob can still redo his last undo (the add, 22)
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_redo_last('playbook-u3', '2', 'bob');
SELECT * FROM pg_temp.st('playbook-u3');
SELECT * FROM pg_temp.audit('playbook-u3');
SELECT * FROM es_verify('playbook-u3');

--
-- 4. Conflicts (23S03)
--
-- alice adds m1 (1), bob moves it (2): alice cannot undo her add; the
-- error names bob's event
SELECT sequence_number, event_type, username
  FROM es_append('playbook-u4', 'module_add', '{"moduleId": "m1", "module": {"name": "ping"}, "position": {"x": 0, "y": 0}}',
                 user_id => '1', username => 'alice');
SELECT sequence_number, event_type, username
  FROM es_append('playbook-u4', 'module_move', '{"moduleId": "m1", "position": {"x": 5, "y": 5}}',
                 user_id => '2', username => 'bob');
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u4', 1, '1', 'alice')$$);
CALL pg_temp.expect_error($$SELECT es_undo_last('playbook-u4', '1', 'alice')$$);
-- alice adds m2 (3) and moves it (4); bob deletes m2 (5): alice cannot
-- undo her move
SELECT sequence_number, event_type, username
  FROM es_append_batch('playbook-u4', $$[
        {"event_type": "module_add", "data": {"moduleId": "m2", "module": {"name": "ping"}, "position": {"x": 0, "y": 0}}, "user_id": "1", "username": "alice"},
        {"event_type": "module_move", "data": {"moduleId": "m2", "position": {"x": 1, "y": 1}}, "user_id": "1", "username": "alice"},
        {"event_type": "module_delete", "data": {"moduleId": "m2"}, "user_id": "2", "username": "bob"}
       ]$$);
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u4', 4, '1', 'alice')$$);
-- alice adds m3 (6) and moves it (7); bob configures m3 (a sibling path,
-- 8) and adds and moves m4 (another module, 9 and 10): alice's undo of her
-- move succeeds (11) and keeps bob's work
SELECT sequence_number, event_type, username
  FROM es_append_batch('playbook-u4', $$[
        {"event_type": "module_add", "data": {"moduleId": "m3", "module": {"name": "ping"}, "position": {"x": 0, "y": 0}}, "user_id": "1", "username": "alice"},
        {"event_type": "module_move", "data": {"moduleId": "m3", "position": {"x": 3, "y": 3}}, "user_id": "1", "username": "alice"},
        {"event_type": "module_config", "data": {"moduleId": "m3", "config": {"by": "bob"}}, "user_id": "2", "username": "bob"},
        {"event_type": "module_add", "data": {"moduleId": "m4", "module": {"name": "ping"}, "position": {"x": 0, "y": 0}}, "user_id": "2", "username": "bob"},
        {"event_type": "module_move", "data": {"moduleId": "m4", "position": {"x": 4, "y": 4}}, "user_id": "2", "username": "bob"}
       ]$$);
SELECT sequence_number, event_type, username, data->'patch' AS patch
  FROM es_undo_last('playbook-u4', '1', 'alice');
SELECT (es_replay('playbook-u4')->'modules'->'m3') - 'module' AS m3,
       es_replay('playbook-u4')->'modules'->'m4'->'position' AS m4_position;
-- the undo of the add of m3 is refused too: the first later event that
-- changed m3 is named (bob's config)
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u4', 6, '1', 'alice')$$);
-- alice adds m5 (12); bob links m5 to m4 (13), relying on m5 existing (the
-- link_add's "exists" precondition): alice's undo of the add would take m5
-- away
SELECT sequence_number, event_type, username
  FROM es_append('playbook-u4', 'module_add', '{"moduleId": "m5", "module": {"name": "ping"}, "position": {"x": 0, "y": 0}}',
                 user_id => '1', username => 'alice');
SELECT sequence_number, event_type, username
  FROM es_append('playbook-u4', 'link_add', '{"linkId": "l1", "source": "m5", "target": "m4"}',
                 user_id => '2', username => 'bob');
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u4', 12, '1', 'alice')$$);
-- a redo conflicts the same way: bob moves m3 (14) after alice's undo of
-- her move; alice's redo would overwrite it
SELECT sequence_number, event_type, username
  FROM es_append('playbook-u4', 'module_move', '{"moduleId": "m3", "position": {"x": 30, "y": 30}}',
                 user_id => '2', username => 'bob');
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u4', 11, '1', 'alice')$$);
-- (es_redo_last has nothing for alice: she added m5 after her undo)
CALL pg_temp.expect_error($$SELECT es_redo_last('playbook-u4', '1', 'alice')$$);
-- bob undoes his move of m1 (15): now alice's undo of her add succeeds (16)
SELECT sequence_number, event_type, username, data->'target_sequence' AS target
  FROM es_undo('playbook-u4', 2, '2', 'bob');
SELECT sequence_number, event_type, username, data->'patch' AS patch
  FROM es_undo('playbook-u4', 1, '1', 'alice');
SELECT string_agg(k, ',' ORDER BY k) AS modules FROM jsonb_object_keys(es_replay('playbook-u4')->'modules') AS k;
-- and bob cannot redo his move of a module that is gone: alice's undo
-- (16) removed it (the hint is not shown)
CALL pg_temp.expect_refusal($$SELECT es_redo('playbook-u4', 15, '2', 'bob')$$);
-- nothing was appended by the refusals
SELECT es_version('playbook-u4') AS version;
SELECT * FROM pg_temp.audit('playbook-u4');
SELECT * FROM es_verify('playbook-u4');

--
-- 5. Refusals, with their SQLSTATE
--
SELECT sequence_number, event_type
  FROM es_append('playbook-u5', 'variable_add', '{"name": "v", "value": 1}', user_id => '1', username => 'alice');
SELECT sequence_number, event_type FROM es_undo('playbook-u5', 1, '1', 'alice');
-- Invalid input: undo twice
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u5', 1)$$);
-- Invalid input: undo an undo
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u5', 2)$$);
-- Invalid input: redo an event that is not an undo
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u5', 1)$$);
SELECT sequence_number, event_type FROM es_redo('playbook-u5', 2, '1', 'alice');
-- Invalid input: redo twice
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u5', 2)$$);
-- Invalid input: a stream with no events
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u-none', 1)$$);
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u-none', 1)$$);
CALL pg_temp.expect_error($$SELECT es_undo_last('playbook-u-none', '1')$$);
CALL pg_temp.expect_error($$SELECT es_redo_last('playbook-u-none', '1')$$);
-- Invalid input: no such event (0, negative, after the version)
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u5', 0)$$);
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u5', -1)$$);
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u5', 4)$$);
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u5', 99)$$);
-- Invalid input: NULL target, NULL stream, NULL user
CALL pg_temp.expect_error($$SELECT es_undo('playbook-u5', NULL)$$);
CALL pg_temp.expect_error($$SELECT es_redo('playbook-u5', NULL)$$);
CALL pg_temp.expect_error($$SELECT es_undo(NULL, 1)$$);
CALL pg_temp.expect_error($$SELECT es_undo_last('playbook-u5', NULL)$$);
CALL pg_temp.expect_error($$SELECT es_redo_last('playbook-u5', NULL)$$);
-- Invalid input: a category without definitions (55000)
SELECT sequence_number, event_type FROM es_append('undonodefs-1', 'anything', '{"a": 1}', user_id => '1');
CALL pg_temp.expect_error($$SELECT es_undo('undonodefs-1', 1)$$);
CALL pg_temp.expect_error($$SELECT es_redo('undonodefs-1', 1)$$);
CALL pg_temp.expect_error($$SELECT es_undo_last('undonodefs-1', '1')$$);
CALL pg_temp.expect_error($$SELECT es_redo_last('undonodefs-1', '1')$$);
-- Invalid input: undo and redo are reserved types (42939), in any category
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('playbook-u5', 'undo', '{"target_sequence": 1, "action_sequence": 1, "target_event_type": "variable_add", "patch": []}')$$);
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('playbook-u5', 'redo', '{}')$$);
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('undonodefs-1', 'undo', '{}')$$);
CALL pg_temp.expect_error($$SELECT es_append('playbook-u5', 'undo', '{"target_sequence": 1, "patch": []}')$$);
CALL pg_temp.expect_error($$SELECT es_append('undonodefs-1', 'redo', '{}')$$);
CALL pg_temp.expect_error($$SELECT es_append_batch('playbook-u5', '[
        {"event_type": "variable_add", "data": {"name": "w", "value": 2}},
        {"event_type": "undo", "data": {"target_sequence": 1, "patch": []}}
       ]')$$);
CALL pg_temp.expect_error($$SELECT es_append_batch('undonodefs-1', '[{"event_type": "redo", "data": {}}]')$$);
-- Invalid input: es_define cannot define them
CALL pg_temp.expect_error($$SELECT es_define('playbook', 'undo', '[]')$$);
-- Invalid input: an event of a type the category does not define (appended
-- before the category had definitions) has no effect to undo (55S02)
SELECT sequence_number, event_type FROM es_append('undolate-1', 'old_type', '{"k": "a"}', user_id => '1');
SELECT es_define('undolate', 'put',
                 '[{"op": "merge", "path": "", "value": {"vals": {}}},
                   {"op": "add", "path": "/vals/{/k}", "value": {"$data": "/v"}}]');
SELECT sequence_number, event_type FROM es_append('undolate-1', 'put', '{"k": "a", "v": 1}', user_id => '1');
CALL pg_temp.expect_error($$SELECT es_undo('undolate-1', 1)$$);
-- es_undo_last passes it over: the user's latest action is the put (3)
SELECT sequence_number, event_type, data FROM es_undo_last('undolate-1', '1');
-- Invalid input: events removed by compaction (55S01); an event after the
-- compaction point can still be undone (5)
SELECT es_snapshot('undolate-1') AS snapshot_at;
SELECT sequence_number, event_type FROM es_append('undolate-1', 'put', '{"k": "b", "v": 2}', user_id => '1');
SELECT es_compact('undolate-1') AS compacted_to;
CALL pg_temp.expect_error($$SELECT es_undo('undolate-1', 2)$$);
CALL pg_temp.expect_error($$SELECT es_redo('undolate-1', 3)$$);
SELECT sequence_number, event_type, data FROM es_undo('undolate-1', 4);
SELECT es_replay('undolate-1') AS state;
-- Invalid input: a deleted stream (55S03)
SELECT es_delete_stream('undolate-1') AS deleted;
CALL pg_temp.expect_error($$SELECT es_undo('undolate-1', 4)$$);
CALL pg_temp.expect_error($$SELECT es_redo('undolate-1', 5)$$);
CALL pg_temp.expect_error($$SELECT es_undo_last('undolate-1', '1')$$);
-- none of the refusals stored anything
SELECT stream, es_version(stream) AS version,
       (SELECT string_agg(sequence_number || ':' || event_type, ',' ORDER BY sequence_number)
          FROM es.events e WHERE e.stream = s.stream) AS events
  FROM (VALUES ('playbook-u5'), ('undonodefs-1'), ('playbook-u-none')) AS s(stream);

--
-- 6. NOTIFY: an undo and a redo are announced on es_playbook like any
-- event, their data carrying the patch (received by a second session
-- through dblink, as in 006_notify)
--
CREATE EXTENSION dblink;
SELECT dblink_connect('listener',
           format('dbname=%L port=%s user=%L', current_database(),
                  current_setting('port'), current_user)
           || coalesce(' host=' || nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), ''))
       AS connected;
SELECT dblink_exec('listener', 'LISTEN es_playbook');
CREATE TEMP TABLE received (n serial, channel text, payload text, from_me boolean);
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
SELECT sequence_number, event_type
  FROM es_append('playbook-u6', 'module_add', '{"moduleId": "m1", "module": {"name": "ping"}, "position": {"x": 1, "y": 2}}',
                 event_id => '00000000-0000-4000-8000-000000019601', user_id => '1', username => 'alice');
SELECT sequence_number, event_type FROM es_undo('playbook-u6', 1, '2', 'bob');
SELECT sequence_number, event_type FROM es_redo('playbook-u6', 2, '1', 'alice');
NOTIFY es_playbook, 'marker 19';
CALL pg_temp.receive('marker 19');
-- the payloads without the per-run values (position, time, generated ids)
SELECT channel, payload::jsonb - 'global_position' - 'timestamp' - 'event_id' AS message
  FROM received WHERE from_me AND payload LIKE '{%' ORDER BY n;
-- an undo's payload is the stored event, as es_sync gives it
SELECT r.payload::jsonb->>'event_type' AS event_type,
       r.payload::jsonb = (es_sync('playbook-u6', (r.payload::jsonb->>'sequence_number')::bigint - 1)->'events'->0) AS same_as_sync,
       (r.payload::jsonb->>'event_id')::uuid = e.event_id AS same_id
  FROM received r
  JOIN es.events e ON e.stream = 'playbook-u6' AND e.sequence_number = (r.payload::jsonb->>'sequence_number')::bigint
 WHERE r.from_me AND r.payload LIKE '{%' ORDER BY r.n;
SELECT dblink_disconnect('listener');
DROP EXTENSION dblink;
DROP TABLE received;

--
-- 7. Audit: who did what
--
-- one stream: every event with its user, the database role that appended
-- it, what it targets and whether it is undone
SELECT sequence_number AS n, user_id, username, db_role = current_user AS by_current_user,
       event_type, target_sequence AS target, undone_by, undone
  FROM es.audit WHERE stream = 'playbook-u4' ORDER BY sequence_number;
-- every event of this file was appended by the current role
SELECT count(*) AS events, count(*) FILTER (WHERE db_role = current_user) AS by_current_user
  FROM es.audit WHERE stream LIKE 'playbook-u%' OR stream LIKE 'undonodefs-%';
-- across streams, per user: actions, undos, redos, and their actions undone now
SELECT username, stream,
       count(*) FILTER (WHERE event_type NOT IN ('undo', 'redo')) AS actions,
       count(*) FILTER (WHERE event_type = 'undo') AS undos,
       count(*) FILTER (WHERE event_type = 'redo') AS redos,
       count(*) FILTER (WHERE undone) AS undone_now
  FROM es.audit WHERE category = 'playbook' AND stream LIKE 'playbook-u%'
 GROUP BY username, stream ORDER BY username, stream;
-- one user across streams, in append order: bob's undos and redos outside
-- playbook-u1, what each one targets and whose action it toggles
SELECT a.stream, a.sequence_number AS n, a.event_type, a.target_sequence AS target,
       t.event_type AS target_type, act.event_type AS action_type,
       act.username AS action_user, a.undone
  FROM es.audit a
  JOIN es.events t ON t.stream = a.stream AND t.sequence_number = a.target_sequence
  JOIN es.events act ON act.stream = a.stream AND act.sequence_number = (a.data->>'action_sequence')::bigint
 WHERE a.user_id = '2' AND a.event_type IN ('undo', 'redo')
   AND a.stream LIKE 'playbook-u%' AND a.stream <> 'playbook-u1'
 ORDER BY a.global_position;
-- undos of someone else's action, and whether that action is undone now
SELECT u.stream, u.sequence_number AS n, u.username AS undone_by_user,
       act.sequence_number AS action, act.event_type AS action_type,
       act.username AS action_user, act.undone AS undone_now, act.undone_by
  FROM es.audit u
  JOIN es.audit act ON act.stream = u.stream AND act.sequence_number = (u.data->>'action_sequence')::bigint
 WHERE u.event_type = 'undo' AND u.username IS DISTINCT FROM act.username
   AND u.stream LIKE 'playbook-u%'
 ORDER BY u.stream, u.sequence_number;
-- an undo event is never "undone" in the view (a redo reverts it); a redo
-- is when a later undo reverts it
SELECT event_type, count(*) AS events, count(*) FILTER (WHERE undone) AS undone
  FROM es.audit WHERE event_type IN ('undo', 'redo') AND stream LIKE 'playbook-u%'
 GROUP BY event_type ORDER BY event_type;

-- every stream of this file is healthy
SELECT * FROM es_verify() WHERE stream LIKE 'playbook-u%' OR stream LIKE 'undonodefs-%';

--
-- 7. Cancelling groups, merges that change one attribute, empty values,
--    and the hint that names what clears the way.  Streams playbook-x1 ..
--    playbook-x5.
--

-- alice adds m1 (1), bob adds m2 (2), alice moves m1 (3); alice undoes her
-- move (4) and then her add (5: the move and its undo cancel out); redo
-- of the add (6), then redo of the move (7): the undo of the add and its
-- redo (5 and 6) cancel out too, so neither is in the way
SELECT sequence_number, event_type FROM es_append('playbook-x1', 'module_add',
       '{"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 1, "y": 1}}',
       user_id => '1', username => 'alice');
SELECT sequence_number, event_type FROM es_append('playbook-x1', 'module_add',
       '{"moduleId": "m2", "module": {"name": "yum"}, "position": {"x": 2, "y": 2}}',
       user_id => '2', username => 'bob');
SELECT sequence_number, event_type FROM es_append('playbook-x1', 'module_move',
       '{"moduleId": "m1", "position": {"x": 10, "y": 10}}',
       user_id => '1', username => 'alice');
SELECT es_replay('playbook-x1') AS after_move \gset
SELECT sequence_number, event_type, data->'target_sequence' AS target
  FROM es_undo_last('playbook-x1', '1', 'alice');
SELECT sequence_number, event_type, data->'target_sequence' AS target
  FROM es_undo_last('playbook-x1', '1', 'alice');
SELECT es_replay('playbook-x1')->'modules' AS modules;
SELECT sequence_number, event_type, data->'target_sequence' AS target
  FROM es_redo_last('playbook-x1', '1', 'alice');
SELECT sequence_number, event_type, data->'target_sequence' AS target
  FROM es_redo_last('playbook-x1', '1', 'alice');
SELECT es_replay('playbook-x1') = :'after_move'::jsonb AS back_to_after_move;
-- the same by number: undo the move again (8) and the add (9), redo the
-- add (10), then redo 8: events 9 and 10 cancel out
SELECT sequence_number FROM es_undo('playbook-x1', 7, '1', 'alice');
SELECT sequence_number FROM es_undo('playbook-x1', 6, '1', 'alice');
SELECT sequence_number FROM es_redo('playbook-x1', 9, '1', 'alice');
SELECT sequence_number FROM es_redo('playbook-x1', 8, '1', 'alice');
SELECT es_replay('playbook-x1') = :'after_move'::jsonb AS back_to_after_move;

-- play_update and role_update merge only what changes: alice sets the
-- hosts (2), bob renames the play (3); each undoes their own update, in
-- either order, with no conflict (both carry the same playId)
SELECT sequence_number FROM es_append('playbook-x2', 'play_add',
       '{"playId": "p1", "name": "Deploy", "hosts": "web"}',
       user_id => '1', username => 'alice');
SELECT sequence_number FROM es_append('playbook-x2', 'play_update',
       '{"playId": "p1", "hosts": "db"}', user_id => '1', username => 'alice');
SELECT sequence_number FROM es_append('playbook-x2', 'play_update',
       '{"playId": "p1", "name": "Deploy db"}', user_id => '2', username => 'bob');
SELECT sequence_number, data->'patch' AS patch FROM es_undo('playbook-x2', 2, '1', 'alice');
SELECT es_replay('playbook-x2')->'plays' AS plays;
SELECT sequence_number, data->'patch' AS patch FROM es_undo('playbook-x2', 3, '2', 'bob');
SELECT es_replay('playbook-x2')->'plays' AS plays;
SELECT sequence_number FROM es_append('playbook-x2', 'role_add',
       '{"roleId": "r1", "name": "nginx"}', user_id => '1', username => 'alice');
SELECT sequence_number FROM es_append('playbook-x2', 'role_update',
       '{"roleId": "r1", "name": "geerlingguy.nginx"}', user_id => '1', username => 'alice');
SELECT sequence_number FROM es_append('playbook-x2', 'role_update',
       '{"roleId": "r1", "vars": {"port": 80}}', user_id => '2', username => 'bob');
SELECT sequence_number, data->'patch' AS patch FROM es_undo('playbook-x2', 7, '1', 'alice');
SELECT es_replay('playbook-x2')->'roles' AS roles;
-- an update that sets nothing new records an empty patch; its undo too
SELECT sequence_number FROM es_append('playbook-x2', 'play_update',
       '{"playId": "p1", "name": "Deploy"}', user_id => '2', username => 'bob');
SELECT sequence_number, data->'patch' AS patch FROM es_undo('playbook-x2', 10, '2', 'bob');

-- empty values from the event data are content: undone like any other
-- (only the containers an effect's own literal merge creates stay)
SELECT sequence_number FROM es_append('playbook-x3', 'variable_add',
       '{"name": "empty", "value": {}}', user_id => '1', username => 'alice');
SELECT sequence_number FROM es_append('playbook-x3', 'variable_add',
       '{"name": "list", "value": []}', user_id => '1', username => 'alice');
SELECT es_replay('playbook-x3')->'variables' AS variables;
SELECT sequence_number, data->'patch' AS patch FROM es_undo('playbook-x3', 2, '1', 'alice');
SELECT sequence_number, data->'patch' AS patch FROM es_undo('playbook-x3', 1, '1', 'alice');
SELECT es_replay('playbook-x3') AS state;
SELECT sequence_number FROM es_append('playbook-x3', 'play_add',
       '{"playId": "p1", "name": "Deploy"}', user_id => '1', username => 'alice');
SELECT sequence_number FROM es_append('playbook-x3', 'play_update',
       '{"playId": "p1", "vars": {}, "tags": []}', user_id => '1', username => 'alice');
SELECT sequence_number, data->'patch' AS patch FROM es_undo('playbook-x3', 6, '1', 'alice');
SELECT es_replay('playbook-x3')->'plays' AS plays;

-- the hint names what clears the way.  Alice adds m1 (1) and moves it (2),
-- undoes the move (3) and then the add (4: the move and its undo cancel
-- out).  Redoing the move would write into m1, which event 4 removed: the
-- hint says to redo event 4 first
SELECT sequence_number FROM es_append('playbook-x4', 'module_add',
       '{"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 1, "y": 1}}',
       user_id => '1', username => 'alice');
SELECT sequence_number FROM es_append('playbook-x4', 'module_move',
       '{"moduleId": "m1", "position": {"x": 5, "y": 5}}', user_id => '1', username => 'alice');
SELECT sequence_number FROM es_undo('playbook-x4', 2, '1', 'alice');
SELECT sequence_number FROM es_undo('playbook-x4', 1, '1', 'alice');
CALL pg_temp.expect_error($$SELECT es_redo('playbook-x4', 3, '1', 'alice')$$);
SELECT sequence_number FROM es_redo('playbook-x4', 4, '1', 'alice');
SELECT sequence_number FROM es_redo('playbook-x4', 3, '1', 'alice');
SELECT es_replay('playbook-x4')->'modules'->'m1'->'position' AS position;

-- alice adds m1 (1); bob moves it (2), undoes (3) and redoes (4) his
-- move: it is in effect through event 4, which the hint names
SELECT sequence_number FROM es_append('playbook-x5', 'module_add',
       '{"moduleId": "m1", "module": {"name": "apt"}, "position": {"x": 1, "y": 1}}',
       user_id => '1', username => 'alice');
SELECT sequence_number FROM es_append('playbook-x5', 'module_move',
       '{"moduleId": "m1", "position": {"x": 7, "y": 7}}', user_id => '2', username => 'bob');
SELECT sequence_number FROM es_undo('playbook-x5', 2, '2', 'bob');
SELECT sequence_number FROM es_redo('playbook-x5', 3, '2', 'bob');
CALL pg_temp.expect_error($$SELECT es_undo('playbook-x5', 1, '1', 'alice')$$);
SELECT sequence_number, event_type FROM es_undo('playbook-x5', 4, '2', 'bob');
SELECT sequence_number, event_type FROM es_undo('playbook-x5', 1, '1', 'alice');
SELECT es_replay('playbook-x5') AS state;

SELECT * FROM es_verify() WHERE stream LIKE 'playbook-x%';
