-- test/bench/state_setup.sql - objects of the state benchmark (state.sh),
-- loaded into the benchmark database after CREATE EXTENSION eventsourcing.
--
--   bench.define_playbook(category)   the three definitions of the benchmark
--   bench.generate_playbook(n, seed)  a deterministic, valid event sequence
--   bench.fold_plpgsql(stream, upto)  the fold a user would write by hand
--   bench.expected_state(stream)      the same state, computed set-based (a
--                                     check of es_replay, not a workload)
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;

-- module_add    {"moduleId": "m17", "module": {"name": ..., "params": {...},
--                "tags": [...], "position": {"x": 1, "y": 2}}}
-- module_move   {"moduleId": "m17", "position": {"x": 3, "y": 4}}
-- module_delete {"moduleId": "m17"}
CREATE FUNCTION bench.define_playbook(p_category text) RETURNS void
LANGUAGE sql AS $$
    SELECT es_define(p_category, 'module_add',
        '[{"op": "merge", "path": "", "value": {"modules": {}}},
          {"op": "absent", "path": "/modules/{/moduleId}"},
          {"op": "add", "path": "/modules/{/moduleId}", "value": {"$data": "/module"}}]',
        '{"type": "object", "required": ["moduleId", "module"], "additionalProperties": false,
          "properties": {
            "moduleId": {"type": "string", "minLength": 1, "maxLength": 64},
            "module": {"type": "object", "required": ["name", "position"],
                       "properties": {
                         "name": {"type": "string", "minLength": 1},
                         "params": {"type": "object"},
                         "tags": {"type": "array", "items": {"type": "string"}},
                         "when": {"type": "string"},
                         "position": {"type": "object", "required": ["x", "y"],
                                      "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}}}}}}');
    SELECT es_define(p_category, 'module_move',
        '[{"op": "replace", "path": "/modules/{/moduleId}/position", "value": {"$data": "/position"}}]',
        '{"type": "object", "required": ["moduleId", "position"], "additionalProperties": false,
          "properties": {
            "moduleId": {"type": "string", "minLength": 1, "maxLength": 64},
            "position": {"type": "object", "required": ["x", "y"], "additionalProperties": false,
                         "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}}}}');
    SELECT es_define(p_category, 'module_delete',
        '[{"op": "remove", "path": "/modules/{/moduleId}"}]',
        '{"type": "object", "required": ["moduleId"], "additionalProperties": false,
          "properties": {"moduleId": {"type": "string", "minLength": 1, "maxLength": 64}}}');
$$;

-- n events: 50 % module_add (a fresh id m1, m2, ...), 40 % module_move and
-- 10 % module_delete of a live module picked at random (an add when no
-- module is live).  setseed makes the sequence the same on every run.
CREATE FUNCTION bench.generate_playbook(n integer, seed double precision DEFAULT 0.42)
RETURNS TABLE (seq integer, event_type text, data jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    live   integer[] := '{}';	-- ids of the live modules, in live[1..nlive]
    nlive  integer := 0;
    nextid integer := 0;
    r      double precision;
    k      integer;
BEGIN
    PERFORM setseed(seed);
    FOR i IN 1..n LOOP
        r := random();
        seq := i;
        IF r < 0.5 OR nlive = 0 THEN
            nextid := nextid + 1;
            nlive := nlive + 1;
            live[nlive] := nextid;
            event_type := 'module_add';
            data := jsonb_build_object(
                'moduleId', 'm' || nextid,
                'module', jsonb_build_object(
                    'name', 'ansible.builtin.template',
                    'params', jsonb_build_object('src', 'templates/app-' || nextid || '.conf.j2',
                                                 'dest', '/etc/app/' || nextid || '.conf',
                                                 'mode', '0644'),
                    'tags', jsonb_build_array('web', 'nginx'),
                    'position', jsonb_build_object('x', floor(random() * 2000)::int,
                                                   'y', floor(random() * 2000)::int)));
        ELSIF r < 0.9 THEN
            k := 1 + floor(random() * nlive)::int;
            event_type := 'module_move';
            data := jsonb_build_object('moduleId', 'm' || live[k],
                'position', jsonb_build_object('x', floor(random() * 2000)::int,
                                               'y', floor(random() * 2000)::int));
        ELSE
            k := 1 + floor(random() * nlive)::int;
            event_type := 'module_delete';
            data := jsonb_build_object('moduleId', 'm' || live[k]);
            live[k] := live[nlive];
            nlive := nlive - 1;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- What a user writes without the extension's replay: read the events in
-- order and apply each type with jsonb_set / #-.  No checks at all (the
-- lenient, cheapest version of a hand-written fold).
CREATE FUNCTION bench.fold_plpgsql(p_stream text, p_upto bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    state jsonb := '{"modules": {}}';
    e     record;
BEGIN
    FOR e IN SELECT ev.event_type, ev.data
               FROM es.events ev
              WHERE ev.stream = p_stream
                AND (p_upto IS NULL OR ev.sequence_number <= p_upto)
              ORDER BY ev.sequence_number
    LOOP
        CASE e.event_type
            WHEN 'module_add' THEN
                state := jsonb_set(state, ARRAY['modules', e.data->>'moduleId'], e.data->'module');
            WHEN 'module_move' THEN
                state := jsonb_set(state, ARRAY['modules', e.data->>'moduleId', 'position'], e.data->'position');
            WHEN 'module_delete' THEN
                state := state #- ARRAY['modules', e.data->>'moduleId'];
        END CASE;
    END LOOP;
    RETURN state;
END $$;

-- The final state of a stream written by generate_playbook, without a fold:
-- ids are never reused, so a module is live if it was added and never
-- deleted, and its position is that of its last move (or of its add).
CREATE FUNCTION bench.expected_state(p_stream text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('modules', coalesce(jsonb_object_agg(id,
               CASE WHEN position IS NULL THEN module
                    ELSE jsonb_set(module, '{position}', position) END), '{}'))
      FROM (SELECT data->>'moduleId' AS id,
                   (array_agg(data->'module') FILTER (WHERE event_type = 'module_add'))[1] AS module,
                   (array_agg(data->'position' ORDER BY sequence_number DESC)
                        FILTER (WHERE event_type = 'module_move'))[1] AS position,
                   bool_or(event_type = 'module_delete') AS deleted
              FROM es.events
             WHERE stream = p_stream
             GROUP BY 1) AS m
     WHERE NOT deleted
$$;
