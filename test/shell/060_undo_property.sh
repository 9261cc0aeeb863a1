#!/usr/bin/env bash
# test/shell/060_undo_property.sh - property test of undo and redo: a long
# random history in one stream against an independent model of its state.
#
# Category "prop" (definitions made here): the state is
#   {"objs": {"a": {..}, "b": {..}, "c": {"inner": {..}, ..}}, "log": [..],
#    "marks": {..}}
# made by one "init" event (event 1, no user), then changed by actions of
# three users u1, u2, u3: set / replace / remove of keys k1..k5 in the
# objects a, b, c and c.inner (set and replace with an "add" and a
# "replace" step, remove with "exists" + "remove"), append to the array
# "log", and touch (relies on a key with "exists", writes
# /marks/<object>-<key> = its sequence number).  Values are numbers,
# strings, objects and arrays (empty ones too: a value from the event's
# data is content, undone like any other), and null.
#
# With a random seed (printed; ES_SEED overrides it, to repeat a run) every
# operation is chosen at random (MINSTD generator in PL/pgSQL, so a seed
# gives the same run everywhere): an action (about half), es_undo of a
# target biased to recent events, es_redo of an undo event, es_undo_last,
# es_redo_last, by a random user.
#
# The model (table mev: for each event its kind, user, target, action, the
# "units" it may write, relied on, changed, and the model state after it)
# is computed without the extension's undo code:
#   - an action's state is the intended change applied with jsonb
#     functions; a replace / remove / touch of a missing key must fail with
#     23S02, any other action must succeed;
#   - a successful undo or redo of target T sets every unit T changed (a
#     key of an object, or the whole log array) back to its value before
#     T; the units it sets must still hold the value T left (else the undo
#     overwrote a later change: "lost update");
#   - es_undo(T) / es_redo(T) must fail with 55S02 exactly when T is not
#     the latest event of its action's undo/redo chain, or is an undo
#     (es_undo) / not an undo (es_redo); with 55S01 when T is at or before
#     the compaction base;
#   - conflicts: among the events after T that do not cancel out (the
#     events after T of one action, counting the action itself, its undos
#     and redos, cancel out when there is an even number of them): one that
#     changed a unit T changed, or relied on ("exists") a unit T created or
#     removed, must make the undo fail with 23S03 ("conflict"); if none of
#     them may write or relies on a unit T may write, the undo must succeed
#     ("free"); otherwise either is right ("maybe": e.g. a set to the value
#     a key already had writes it without changing it);
#   - es_undo_last / es_redo_last must choose the target the documented
#     rule gives (walking the user's events backwards) or fail with 55S02
#     when there is none; the undo/redo event must carry the target and
#     action the model expects, and the next sequence number.
# Every disagreement is recorded (table problems) and printed.
#
# Phase 1: eventsourcing.snapshot_every = 37, OPS (1500) operations in
# chunks of 100; after each chunk es_replay(stream) must equal the model.
# Then, from a new session with the state cache off: es_replay at every
# sequence number equals the model state there, es.audit (type, user,
# target, undone_by) agrees with the model, es_verify() is empty.
# Phase 2: snapshot_every = 0, es_snapshot (at S), COMPACT_AFTER (100)
# more operations, es_compact (must remove S events); es.removals keeps
# the model state at S; es_replay at S and later equals the model, before
# S fails with 55S01; es_read returns events S+1.., es_verify() empty.
# Phase 3: snapshot_every = 25, OPS_AFTER (300) more operations (a few
# es_undo targets at or before S: 55S01), checked as in phase 1.
# The outcome counts (per operation: expected class -> SQLSTATE) and the
# refusals are printed.  Runtime about 20 s.
#
# Environment: see lib/common.bash; ES_SEED (random), OPS (1500),
# COMPACT_AFTER (100), OPS_AFTER (300).
# shellcheck source-path=SCRIPTDIR source=lib/common.bash
. "$(dirname "$0")/lib/common.bash"

OPS=${OPS:-1500}
COMPACT_AFTER=${COMPACT_AFTER:-100}
OPS_AFTER=${OPS_AFTER:-300}
SEED=${ES_SEED:-$(((RANDOM << 15 | RANDOM) % 2147483646 + 1))}
case $SEED in
	'' | *[!0-9]*) die "ES_SEED must be a number (got '$SEED')" ;;
esac
# the generator's state must be in 1 .. 2^31 - 2
RNG=$((SEED % 2147483646 + 1))
DB="es_undoprop_$$"

log "seed $SEED (ES_SEED=$SEED repeats this run); $OPS + $COMPACT_AFTER + $OPS_AFTER operations"

es_wait_ready 60 || die "server not ready on $PGHOST:$PGPORT"
es_create_db "$DB"

psql -X -q -v ON_ERROR_STOP=1 -v rng="$RNG" -d "$DB" >"$ES_TMP/setup.out" 2>&1 <<'SQL' || die "setup failed: $(cat "$ES_TMP/setup.out")"
SET client_min_messages = warning;

-- the category
SELECT es_define('prop', 'init',
    '[{"op": "add", "path": "/objs", "value": {"a": {}, "b": {}, "c": {"inner": {}}}},
      {"op": "add", "path": "/log", "value": []},
      {"op": "add", "path": "/marks", "value": {}}]');
SELECT es_define('prop', t.name, t.effect::jsonb, t.schema::jsonb)
  FROM (VALUES
    ('set', '[{"op": "add", "path": "/objs/{/c}/{/k}", "value": {"$data": "/v"}}]',
     '{"type": "object", "required": ["c", "k", "v"], "additionalProperties": false,
       "properties": {"c": {"enum": ["a", "b", "c"]}, "k": {"type": "string"}, "v": {}}}'),
    ('replace', '[{"op": "replace", "path": "/objs/{/c}/{/k}", "value": {"$data": "/v"}}]',
     '{"type": "object", "required": ["c", "k", "v"], "additionalProperties": false,
       "properties": {"c": {"enum": ["a", "b", "c"]}, "k": {"type": "string"}, "v": {}}}'),
    ('remove', '[{"op": "exists", "path": "/objs/{/c}/{/k}"}, {"op": "remove", "path": "/objs/{/c}/{/k}"}]',
     '{"type": "object", "required": ["c", "k"], "additionalProperties": false,
       "properties": {"c": {"enum": ["a", "b", "c"]}, "k": {"type": "string"}}}'),
    ('inner_set', '[{"op": "add", "path": "/objs/c/inner/{/k}", "value": {"$data": "/v"}}]',
     '{"type": "object", "required": ["k", "v"], "additionalProperties": false,
       "properties": {"k": {"type": "string"}, "v": {}}}'),
    ('inner_replace', '[{"op": "replace", "path": "/objs/c/inner/{/k}", "value": {"$data": "/v"}}]',
     '{"type": "object", "required": ["k", "v"], "additionalProperties": false,
       "properties": {"k": {"type": "string"}, "v": {}}}'),
    ('inner_remove', '[{"op": "exists", "path": "/objs/c/inner/{/k}"}, {"op": "remove", "path": "/objs/c/inner/{/k}"}]',
     '{"type": "object", "required": ["k"], "additionalProperties": false,
       "properties": {"k": {"type": "string"}}}'),
    ('append', '[{"op": "add", "path": "/log/-", "value": {"$data": "/v"}}]',
     '{"type": "object", "required": ["v"], "additionalProperties": false, "properties": {"v": {}}}'),
    ('touch', '[{"op": "exists", "path": "/objs/{/c}/{/k}"},
                {"op": "add", "path": "/marks/{/m}", "value": {"$event": "sequence_number"}}]',
     '{"type": "object", "required": ["c", "k", "m"], "additionalProperties": false,
       "properties": {"c": {"enum": ["a", "b", "c"]}, "k": {"type": "string"}, "m": {"type": "string"}}}')
  ) AS t(name, effect, schema);

-- the model: one row per event of the stream
CREATE TABLE mev (
    seq bigint PRIMARY KEY,
    kind text NOT NULL,         -- action | undo | redo
    uid text,                   -- user id (NULL for init)
    op text NOT NULL,           -- event type
    target bigint,              -- undo / redo: the event toggled
    action bigint NOT NULL,     -- the action whose chain it belongs to (itself for an action)
    touched text[] NOT NULL,    -- units it may write (for a toggle: those of its action)
    relies text[] NOT NULL,     -- units its "exists" steps relied on
    changed text[] NOT NULL,    -- units whose value it changed
    presence text[] NOT NULL,   -- units it created or removed
    state jsonb NOT NULL);      -- model state after it
CREATE TABLE meta (name text PRIMARY KEY, val bigint NOT NULL);
CREATE TABLE counts (op text, outcome text, n bigint NOT NULL, PRIMARY KEY (op, outcome));
CREATE TABLE problems (id bigserial PRIMARY KEY, opno bigint, msg text);
INSERT INTO meta VALUES ('rng', :rng), ('base', 0), ('opno', 0);

-- the random generator (MINSTD); its state lives in the setting prop.rng
-- while a chunk runs, in meta between chunks
CREATE FUNCTION rnd() RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    s bigint := current_setting('prop.rng')::bigint;
BEGIN
    s := (s * 48271) % 2147483647;
    PERFORM set_config('prop.rng', s::text, false);
    RETURN s / 2147483647.0;
END
$$;
-- ri(n): 0 .. n-1
CREATE FUNCTION ri(n bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT least(floor(rnd() * n)::bigint, n - 1)
$$;

-- units: 'a/k1' .. 'c/k5', 'inner/k1' .. 'inner/k5', 'log', 'marks/a-k1' ..
CREATE FUNCTION unit_path(u text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN u = 'log' THEN ARRAY['log']
                WHEN u LIKE 'marks/%' THEN ARRAY['marks', substr(u, 7)]
                WHEN u LIKE 'inner/%' THEN ARRAY['objs', 'c', 'inner', substr(u, 7)]
                ELSE ARRAY['objs', split_part(u, '/', 1), split_part(u, '/', 2)] END
$$;
CREATE TABLE units AS
SELECT array_agg(u ORDER BY u) AS all_units FROM (
    SELECT o || '/k' || k AS u FROM unnest(ARRAY['a', 'b', 'c', 'inner']) AS o, generate_series(1, 5) AS k
    UNION ALL SELECT 'log'
    UNION ALL SELECT 'marks/' || o || '-k' || k FROM unnest(ARRAY['a', 'b', 'c']) AS o, generate_series(1, 5) AS k) s;

-- diff(s1, s2): the units whose value / presence differ; anything else
-- that differs is a bug of the model
CREATE FUNCTION diff(s1 jsonb, s2 jsonb, OUT changed text[], OUT presence text[])
LANGUAGE plpgsql AS $$
DECLARE
    u text;
    p text[];
    v1 jsonb;
    v2 jsonb;
    r1 jsonb := s1;
    r2 jsonb := s2;
BEGIN
    changed := '{}';
    presence := '{}';
    FOREACH u IN ARRAY (SELECT all_units FROM units) LOOP
        p := unit_path(u);
        v1 := s1 #> p;
        v2 := s2 #> p;
        IF v1 IS DISTINCT FROM v2 THEN
            changed := changed || u;
        END IF;
        IF (v1 IS NULL) <> (v2 IS NULL) THEN
            presence := presence || u;
        END IF;
        r1 := r1 #- p;
        r2 := r2 #- p;
    END LOOP;
    IF r1 IS DISTINCT FROM r2 THEN
        RAISE EXCEPTION 'model: a change outside the units: % -> %', r1, r2;
    END IF;
END
$$;

-- revert(cur, before, units): cur with those units as in before
CREATE FUNCTION revert(cur jsonb, before jsonb, us text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    u text;
    p text[];
    v jsonb;
BEGIN
    FOREACH u IN ARRAY us LOOP
        p := unit_path(u);
        v := before #> p;
        IF v IS NULL THEN
            cur := cur #- p;
        ELSE
            cur := jsonb_set(cur, p, v, true);
        END IF;
    END LOOP;
    RETURN cur;
END
$$;

-- chain_refusal(t, undo): why es_undo (undo) / es_redo of t must fail
-- with 55S02, or NULL
CREATE FUNCTION chain_refusal(t bigint, undo boolean) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN m.seq IS NULL THEN 'no such event in the model'
                WHEN undo AND m.kind = 'undo' THEN 'it is an undo'
                WHEN NOT undo AND m.kind <> 'undo' THEN 'it is not an undo'
                WHEN EXISTS (SELECT 1 FROM mev x
                              WHERE x.action = m.action AND x.seq > m.seq
                                AND x.kind IN ('undo', 'redo'))
                    THEN 'not the latest of its chain' END
      FROM (SELECT t AS t0) z LEFT JOIN mev m ON m.seq = z.t0
$$;

-- classify(t): conflict (23S03 required), free (success required) or
-- maybe, from the events after t that are not cancelled: the events after
-- t of one action (the action itself, its undos and redos) cancel out when
-- there is an even number of them
CREATE FUNCTION classify(t bigint) RETURNS text LANGUAGE sql AS $$
    WITH tgt AS (SELECT changed, presence, touched FROM mev WHERE seq = t),
    groups AS (SELECT action, count(*) AS n FROM mev WHERE seq > t GROUP BY action),
    later AS (SELECT e.* FROM mev e JOIN groups g ON g.action = e.action
               WHERE e.seq > t AND g.n % 2 = 1)
    SELECT CASE WHEN coalesce(bool_or(l.changed && tgt.changed OR l.relies && tgt.presence), false)
                    THEN 'conflict'
                WHEN coalesce(bool_or(l.touched && tgt.touched OR l.relies && tgt.touched), false)
                    THEN 'maybe'
                ELSE 'free' END
      FROM tgt LEFT JOIN later l ON true
     GROUP BY tgt.changed, tgt.presence, tgt.touched
$$;

-- model_find_last(user, undo, base): the event es_undo_last (undo) /
-- es_redo_last of the user must toggle, 0 if none; the documented rule,
-- walking the events after base backwards
CREATE FUNCTION model_find_last(p_user text, p_undo boolean, p_base bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    e record;
    seen bigint[] := '{}';
    is_first boolean;
BEGIN
    FOR e IN SELECT seq, kind, uid, action FROM mev WHERE seq > p_base ORDER BY seq DESC LOOP
        is_first := false;
        IF e.kind IN ('undo', 'redo') AND NOT (e.action = ANY (seen)) THEN
            seen := seen || e.action;
            is_first := true;
        END IF;
        CONTINUE WHEN e.uid IS DISTINCT FROM p_user;
        IF p_undo THEN
            IF e.kind = 'redo' AND is_first THEN
                RETURN e.seq;       -- a redo still in effect
            ELSIF e.kind = 'action' AND NOT (e.seq = ANY (seen)) THEN
                RETURN e.seq;       -- an action never toggled
            END IF;
        ELSE
            IF e.kind = 'action' THEN
                RETURN 0;           -- acted since
            ELSIF e.kind = 'undo' AND is_first THEN
                RETURN e.seq;
            END IF;
        END IF;
    END LOOP;
    RETURN 0;
END
$$;

CREATE FUNCTION problem(p_opno bigint, p_msg text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO problems (opno, msg) VALUES (p_opno, p_msg)
$$;
CREATE FUNCTION count_outcome(p_op text, p_outcome text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counts VALUES (p_op, p_outcome, 1)
    ON CONFLICT (op, outcome) DO UPDATE SET n = counts.n + 1
$$;

-- pick_target(v, base, phase): a target for es_undo, mostly recent; never
-- event 1 (v >= 2)
CREATE FUNCTION pick_target(p_v bigint, p_base bigint, p_phase int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint := greatest(2, p_base + 1);
BEGIN
    IF p_v < lo THEN
        RAISE EXCEPTION 'pick_target: no event after % (version %)', lo, p_v;
    END IF;
    IF p_phase >= 3 AND p_base >= 2 AND rnd() < 0.03 THEN
        RETURN 2 + ri(p_base - 1);      -- removed by the compaction
    END IF;
    IF rnd() < 0.6 THEN
        RETURN p_v - ri(least(20, p_v - lo + 1));
    END IF;
    RETURN lo + ri(p_v - lo + 1);
END
$$;

-- pick_undo(v, base, phase): a target for es_redo: an undo event, mostly
-- a recent one; sometimes any event
CREATE FUNCTION pick_undo(p_v bigint, p_base bigint, p_phase int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := (SELECT count(*) FROM mev WHERE kind = 'undo' AND seq > p_base);
BEGIN
    IF n = 0 OR rnd() < 0.1 THEN
        RETURN pick_target(p_v, p_base, p_phase);
    END IF;
    RETURN (SELECT seq FROM mev WHERE kind = 'undo' AND seq > p_base ORDER BY seq DESC
            OFFSET CASE WHEN rnd() < 0.7 THEN ri(least(n, 8)) ELSE ri(n) END LIMIT 1);
END
$$;

-- one_op(opno, phase): one random operation, checked against the model,
-- the model updated with what the store did
CREATE FUNCTION one_op(p_opno bigint, p_phase int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    l_v bigint;
    l_base bigint;
    l_cur jsonb;
    l_user text := 'u' || (1 + ri(3));
    l_op text;
    l_obj text;
    l_key text;
    l_unit text;
    l_path text[];
    l_val jsonb;
    l_m bigint;
    l_type text;
    l_data jsonb;
    l_pred_ok boolean := true;
    l_new jsonb;
    l_touched text[];
    l_relies text[] := '{}';
    l_t bigint;
    l_expect text;
    l_refusal text;
    l_got text;
    l_msg text;
    l_detail text;
    l_ev es.events;
    l_tm record;
    l_before jsonb;
    l_d record;
    l_u text;
    l_actual_target bigint;
BEGIN
    SELECT max(seq) INTO l_v FROM mev;
    SELECT state INTO l_cur FROM mev WHERE seq = l_v;
    SELECT val INTO l_base FROM meta WHERE name = 'base';

    -- (event 1, the init event, is never a target, nor an event at or
    -- before the base, except on purpose: only actions until there are
    -- others)
    IF l_v < greatest(2, l_base + 1) OR rnd() < 0.5 THEN
        -- an action
        l_op := (ARRAY['set', 'set', 'set', 'set', 'set', 'replace', 'replace', 'remove', 'remove',
                       'append', 'append', 'touch', 'touch'])[1 + ri(13)];
        l_key := 'k' || (1 + ri(5));
        l_m := ri(1000);
        l_val := CASE ri(20) WHEN 0 THEN 'null'::jsonb
                             WHEN 1 THEN jsonb_build_array(l_m, l_m + 1)
                             WHEN 2 THEN jsonb_build_object('n', l_m, 't', jsonb_build_array(l_m))
                             WHEN 3 THEN jsonb_build_object('n', l_m)
                             WHEN 4 THEN to_jsonb('s' || l_m)
                             WHEN 5 THEN to_jsonb('s' || l_m)
                             WHEN 6 THEN '{}'::jsonb
                             WHEN 7 THEN '[]'::jsonb
                             ELSE to_jsonb(l_m) END;
        IF l_op IN ('set', 'replace', 'remove') THEN
            l_obj := (ARRAY['a', 'b', 'c', 'inner'])[1 + ri(4)];
            l_unit := l_obj || '/' || l_key;
            l_path := unit_path(l_unit);
            IF l_obj = 'inner' THEN
                l_type := 'inner_' || l_op;
                l_data := jsonb_build_object('k', l_key, 'v', l_val);
            ELSE
                l_type := l_op;
                l_data := jsonb_build_object('c', l_obj, 'k', l_key, 'v', l_val);
            END IF;
            IF l_op = 'remove' THEN
                l_data := l_data - 'v';
                l_relies := ARRAY[l_unit];
            END IF;
            l_pred_ok := l_op = 'set' OR l_cur #> l_path IS NOT NULL;
            l_new := CASE WHEN NOT l_pred_ok THEN l_cur
                          WHEN l_op = 'remove' THEN l_cur #- l_path
                          ELSE jsonb_set(l_cur, l_path, l_val, true) END;
            l_touched := ARRAY[l_unit];
        ELSIF l_op = 'append' THEN
            l_type := 'append';
            l_data := jsonb_build_object('v', l_val);
            l_new := jsonb_set(l_cur, '{log}', (l_cur -> 'log') || jsonb_build_array(l_val));
            l_touched := ARRAY['log'];
        ELSE
            l_obj := (ARRAY['a', 'b', 'c'])[1 + ri(3)];
            l_type := 'touch';
            l_data := jsonb_build_object('c', l_obj, 'k', l_key, 'm', l_obj || '-' || l_key);
            l_relies := ARRAY[l_obj || '/' || l_key];
            l_pred_ok := l_cur #> unit_path(l_obj || '/' || l_key) IS NOT NULL;
            l_new := CASE WHEN l_pred_ok
                          THEN jsonb_set(l_cur, ARRAY['marks', l_obj || '-' || l_key], to_jsonb(l_v + 1), true)
                          ELSE l_cur END;
            l_touched := ARRAY['marks/' || l_obj || '-' || l_key];
        END IF;
        BEGIN
            SELECT * INTO l_ev FROM es_append('prop-1', l_type, l_data,
                                              user_id => l_user, username => upper(l_user));
            l_got := 'ok';
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS l_msg = MESSAGE_TEXT, l_detail = PG_EXCEPTION_DETAIL;
            l_got := SQLSTATE;
        END;
        l_expect := CASE WHEN l_pred_ok THEN 'ok' ELSE '23S02' END;
        PERFORM count_outcome('action ' || l_op, l_got);
        IF l_got <> l_expect THEN
            PERFORM problem(p_opno, format('%s %s by %s at version %s: expected %s, got %s %s (%s)',
                                           l_type, l_data, l_user, l_v, l_expect, l_got, l_msg, l_detail));
        END IF;
        IF l_got = 'ok' THEN
            IF l_ev.sequence_number <> l_v + 1 THEN
                PERFORM problem(p_opno, format('%s appended as #%s, expected #%s',
                                               l_type, l_ev.sequence_number, l_v + 1));
            END IF;
            l_d := diff(l_cur, l_new);
            INSERT INTO mev VALUES (l_ev.sequence_number, 'action', l_user, l_type, NULL,
                                    l_ev.sequence_number, l_touched, l_relies,
                                    l_d.changed, l_d.presence, l_new);
        END IF;
        RETURN;
    END IF;

    -- undo or redo
    l_m := ri(100);
    l_op := CASE WHEN l_m < 30 THEN 'es_undo'
                 WHEN l_m < 45 THEN 'es_redo'
                 WHEN l_m < 75 THEN 'es_undo_last'
                 ELSE 'es_redo_last' END;
    l_t := CASE l_op WHEN 'es_undo' THEN pick_target(l_v, l_base, p_phase)
                     WHEN 'es_redo' THEN pick_undo(l_v, l_base, p_phase)
                     WHEN 'es_undo_last' THEN model_find_last(l_user, true, l_base)
                     ELSE model_find_last(l_user, false, l_base) END;
    IF l_op IN ('es_undo', 'es_redo') AND l_t <= l_base THEN
        l_expect := '55S01';
    ELSIF l_t = 0 THEN
        l_expect := '55S02';        -- nothing to undo / redo for the user
    ELSE
        l_refusal := chain_refusal(l_t, l_op IN ('es_undo', 'es_undo_last'));
        IF l_refusal IS NOT NULL AND l_op IN ('es_undo_last', 'es_redo_last') THEN
            RAISE EXCEPTION 'model: % chose %, which cannot be toggled (%)', l_op, l_t, l_refusal;
        END IF;
        l_expect := CASE WHEN l_refusal IS NOT NULL THEN '55S02' ELSE classify(l_t) END;
    END IF;

    BEGIN
        CASE l_op
        WHEN 'es_undo' THEN
            SELECT * INTO l_ev FROM es_undo('prop-1', l_t, l_user, upper(l_user));
        WHEN 'es_redo' THEN
            SELECT * INTO l_ev FROM es_redo('prop-1', l_t, l_user, upper(l_user));
        WHEN 'es_undo_last' THEN
            SELECT * INTO l_ev FROM es_undo_last('prop-1', l_user, upper(l_user));
        ELSE
            SELECT * INTO l_ev FROM es_redo_last('prop-1', l_user, upper(l_user));
        END CASE;
        l_got := 'ok';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS l_msg = MESSAGE_TEXT, l_detail = PG_EXCEPTION_DETAIL;
        l_got := SQLSTATE;
    END;
    PERFORM count_outcome(l_op, l_expect || ' -> ' || l_got);
    IF NOT (l_got = l_expect
            OR (l_got = 'ok' AND l_expect IN ('free', 'maybe'))
            OR (l_got = '23S03' AND l_expect IN ('conflict', 'maybe'))) THEN
        PERFORM problem(p_opno, format('%s(%s) by %s at version %s: the model expected %s (%s), got %s %s (%s)',
                                       l_op, CASE WHEN l_op LIKE '%_last' THEN l_user ELSE l_t::text END,
                                       l_user, l_v, l_expect, coalesce(l_refusal, 'target ' || l_t),
                                       l_got, l_msg, l_detail));
    END IF;
    IF l_got <> 'ok' THEN
        RETURN;
    END IF;

    -- what was appended
    l_actual_target := (l_ev.data ->> 'target_sequence')::bigint;
    IF l_ev.sequence_number <> l_v + 1
       OR l_ev.event_type <> (CASE WHEN l_op IN ('es_undo', 'es_undo_last') THEN 'undo' ELSE 'redo' END)
       OR l_actual_target IS DISTINCT FROM l_t
       OR l_ev.user_id IS DISTINCT FROM l_user THEN
        PERFORM problem(p_opno, format('%s by %s at version %s appended #%s %s target %s user %s; expected #%s target %s',
                                       l_op, l_user, l_v, l_ev.sequence_number, l_ev.event_type,
                                       l_actual_target, l_ev.user_id, l_v + 1, l_t));
    END IF;
    IF l_actual_target IS NULL OR NOT EXISTS (SELECT 1 FROM mev WHERE seq = l_actual_target) THEN
        RAISE EXCEPTION 'op %: % appended an event the model cannot follow: %', p_opno, l_op, row_to_json(l_ev);
    END IF;
    l_t := l_actual_target;         -- the model follows the store
    SELECT * INTO l_tm FROM mev WHERE seq = l_t;
    SELECT state INTO l_before FROM mev WHERE seq = l_t - 1;
    IF (l_ev.data ->> 'action_sequence')::bigint IS DISTINCT FROM l_tm.action THEN
        PERFORM problem(p_opno, format('%s of %s: action_sequence %s, the model says %s',
                                       l_op, l_t, l_ev.data ->> 'action_sequence', l_tm.action));
    END IF;
    -- no lost update: what the target changed is still as it left it
    FOREACH l_u IN ARRAY l_tm.changed LOOP
        IF l_cur #> unit_path(l_u) IS DISTINCT FROM l_tm.state #> unit_path(l_u) THEN
            PERFORM problem(p_opno, format('%s of %s at version %s overwrote a later change of %s: %s after the target, %s now',
                                           l_op, l_t, l_v, l_u, l_tm.state #> unit_path(l_u),
                                           l_cur #> unit_path(l_u)));
        END IF;
    END LOOP;
    l_new := revert(l_cur, l_before, l_tm.changed);
    l_d := diff(l_cur, l_new);
    INSERT INTO mev VALUES (l_ev.sequence_number, l_ev.event_type, l_user, l_ev.event_type, l_t,
                            l_tm.action, l_tm.touched, '{}', l_d.changed, l_d.presence, l_new);
END
$$;

-- run_ops(n, phase): n operations, numbered on from meta
CREATE FUNCTION run_ops(n int, p_phase int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    opno bigint := (SELECT val FROM meta WHERE name = 'opno');
BEGIN
    PERFORM set_config('prop.rng', (SELECT val FROM meta WHERE name = 'rng')::text, false);
    FOR i IN 1 .. n LOOP
        opno := opno + 1;
        PERFORM one_op(opno, p_phase);
    END LOOP;
    UPDATE meta SET val = current_setting('prop.rng')::bigint WHERE name = 'rng';
    UPDATE meta SET val = opno WHERE name = 'opno';
    RETURN opno;
END
$$;

-- check_head(): es_version and es_replay of the stream against the model
CREATE FUNCTION check_head() RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN es_version('prop-1') <> m.seq
                    THEN format('es_version is %s, the model has %s events', es_version('prop-1'), m.seq)
                WHEN es_replay('prop-1') IS DISTINCT FROM m.state
                    THEN format('at %s es_replay is %s, the model %s', m.seq, es_replay('prop-1'), m.state)
                ELSE 'ok' END
      FROM mev m WHERE m.seq = (SELECT max(seq) FROM mev)
$$;

-- check_all(): lines "name|value" for the shell: replays at every
-- sequence number from the base on, replays before it, es.audit, es_read,
-- es_verify
CREATE FUNCTION try_replay(p_at bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN es_replay('prop-1', p_at)::text;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
CREATE FUNCTION check_all() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    base bigint := (SELECT val FROM meta WHERE name = 'base');
    v bigint := (SELECT max(seq) FROM mev);
    bad bigint := 0;
    first_bad text;
    r record;
BEGIN
    FOR r IN SELECT seq, state FROM mev WHERE seq >= greatest(base, 1) ORDER BY seq LOOP
        IF es_replay('prop-1', r.seq) IS DISTINCT FROM r.state THEN
            bad := bad + 1;
            first_bad := coalesce(first_bad, format('at %s: es_replay %s, model %s',
                                                    r.seq, es_replay('prop-1', r.seq), r.state));
        END IF;
    END LOOP;
    RETURN NEXT format('replays|%s|%s', v - greatest(base, 1) + 1, bad);
    IF first_bad IS NOT NULL THEN
        RETURN NEXT 'first_bad_replay|' || first_bad;
    END IF;
    IF base > 0 THEN
        RETURN NEXT format('before_base|%s %s %s', try_replay(0), try_replay(1), try_replay(base - 1));
    END IF;
    RETURN NEXT 'head|' || (es_replay('prop-1') IS NOT DISTINCT FROM (SELECT state FROM mev WHERE seq = v))::text;
    -- es.audit: type, user, target and undone_by of every event left
    RETURN NEXT format('audit_rows|%s|%s',
                       (SELECT count(*) FROM es.audit WHERE stream = 'prop-1'), v - base);
    RETURN NEXT 'audit_mismatches|' || (
        SELECT count(*) FROM es.audit a JOIN mev m ON m.seq = a.sequence_number
         WHERE a.stream = 'prop-1'
           AND (a.event_type IS DISTINCT FROM m.op
             OR a.user_id IS DISTINCT FROM m.uid
             OR a.target_sequence IS DISTINCT FROM m.target
             OR a.undone_by IS DISTINCT FROM (
                    SELECT CASE WHEN x.kind = 'undo' THEN x.seq END
                      FROM mev x
                     WHERE m.kind <> 'undo' AND x.action = m.action
                       AND x.kind IN ('undo', 'redo') AND x.seq > m.seq
                     ORDER BY x.seq DESC LIMIT 1)));
    RETURN NEXT format('read|%s|%s', (SELECT count(*) || ' from ' || coalesce(min(sequence_number), 0)
                                        FROM es_read('prop-1', 0)),
                       (v - base) || ' from ' || CASE WHEN v > base THEN base + 1 ELSE 0 END);
    RETURN NEXT 'verify|' || (SELECT count(*) FROM es_verify());
    FOR r IN SELECT stream, problem FROM es_verify() LIMIT 5 LOOP
        RETURN NEXT format('verify_problem|%s: %s', r.stream, r.problem);
    END LOOP;
END
$$;

-- event 1
SELECT sequence_number AS init FROM es_append('prop-1', 'init', '{}');
INSERT INTO mev VALUES (1, 'action', NULL, 'init', NULL, 1, '{}', '{}', '{}', '{}',
    '{"objs": {"a": {}, "b": {}, "c": {"inner": {}}}, "log": [], "marks": {}}');
SELECT check_head();
SQL
check "setup: es_replay after the init event equals the model" \
	"$(q "$DB" "SELECT check_head()")" ok

# run_phase LABEL PHASE N: N operations in chunks of 100 in one session
# (its state cache on), es_replay compared after each chunk
run_phase() {
	local label=$1 phase=$2 n=$3 done_ops=0 chunk start=$SECONDS
	{
		echo "SET eventsourcing.snapshot_every = $SNAPSHOT_EVERY;"
		while [ "$done_ops" -lt "$n" ]; do
			chunk=$((n - done_ops < 100 ? n - done_ops : 100))
			done_ops=$((done_ops + chunk))
			echo "SELECT 'CHECK|' || run_ops($chunk, $phase) || '|' || check_head();"
		done
	} | psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" >"$ES_TMP/$label.out" 2>&1 ||
		fail "$label: psql failed: $(tail -n 5 "$ES_TMP/$label.out")"
	while IFS='|' read -r tag opno result; do
		[ "$tag" = CHECK ] || continue
		check "$label: es_replay equals the model after operation $opno" "$result" ok
	done <"$ES_TMP/$label.out"
	log "$label: $n operations took $((SECONDS - start)) s; stream version $(q "$DB" "SELECT es_version('prop-1')")"
}

# check_everything LABEL: check_all() from a new session, state cache off
check_everything() {
	local label=$1 tag a b
	PGOPTIONS="-c eventsourcing.state_cache_size=0" psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" \
		-c "SELECT * FROM check_all()" >"$ES_TMP/$label.all" 2>&1 ||
		fail "$label: check_all failed: $(tail -n 5 "$ES_TMP/$label.all")"
	while IFS='|' read -r tag a b; do
		case $tag in
			replays) check "$label: es_replay at each of $a sequence numbers from the base on differing from the model" "$b" 0 ;;
			first_bad_replay) echo "    first difference: $a${b:+|$b}" ;;
			before_base) check "$label: es_replay at 0, 1 and base - 1 (before the base)" "$a" "55S01 55S01 55S01" ;;
			head) check "$label: es_replay of the stream equals the model (new session, no cache)" "$a" true ;;
			audit_rows) check "$label: es.audit rows of the stream" "$a" "$b" ;;
			audit_mismatches) check "$label: es.audit rows disagreeing with the model (type, user, target, undone_by)" "$a" 0 ;;
			read) check "$label: es_read from 0 (count from first)" "$a" "$b" ;;
			verify) check "$label: rows of es_verify()" "$a" 0 ;;
			verify_problem) echo "    es_verify: $a${b:+|$b}" ;;
			*) fail "$label: unexpected line from check_all: $tag|$a|$b" ;;
		esac
	done <"$ES_TMP/$label.all"
}

# ---- phase 1: the long history ----
SNAPSHOT_EVERY=37
run_phase "phase 1" 1 "$OPS"
check_everything "phase 1"

# ---- phase 2: es_snapshot, more operations, es_compact ----
S=$(q "$DB" "SELECT es_snapshot('prop-1')")
log "phase 2: es_snapshot at $S, then $COMPACT_AFTER operations without snapshots, then es_compact"
SNAPSHOT_EVERY=0
if [ "$COMPACT_AFTER" -gt 0 ]; then
	run_phase "phase 2" 2 "$COMPACT_AFTER"
fi
removed=$(q "$DB" "SELECT es_compact('prop-1')")
check "phase 2: es_compact removed the events up to the snapshot" "$removed" "$S"
q "$DB" "UPDATE meta SET val = $S WHERE name = 'base'" >/dev/null
check "phase 2: es.removals keeps the model state at $S" \
	"$(q "$DB" "SELECT count(*) || ' ' || bool_and(r.state = m.state) || ' ' || min(r.last_sequence) || ' ' || min(r.events_removed)
	              FROM es.removals r JOIN mev m ON m.seq = r.last_sequence WHERE r.stream = 'prop-1'")" \
	"1 true $S $S"
check "phase 2: es_replay equals the model after the compaction" "$(q "$DB" "SELECT check_head()")" ok
check_everything "phase 2"

# ---- phase 3: more operations on the compacted stream ----
SNAPSHOT_EVERY=25
run_phase "phase 3" 3 "$OPS_AFTER"
check_everything "phase 3"

# ---- what happened ----
log "outcomes (operation: [model's expectation ->] outcome count):"
q "$DB" "SELECT op || ': ' || string_agg(outcome || ' ' || n, ', ' ORDER BY outcome)
           FROM counts GROUP BY op ORDER BY op" | sed 's/^/    /'
log "refusals counted: $(q "$DB" "SELECT coalesce(string_agg(st || ' ' || n, ', ' ORDER BY st), 'none') FROM (
        SELECT right(outcome, 5) AS st, sum(n) AS n FROM counts
         WHERE right(outcome, 5) ~ '^[0-9A-Z]{5}$' GROUP BY 1) s")"
log "events: $(q "$DB" "SELECT string_agg(kind || ' ' || n, ', ' ORDER BY kind) FROM (SELECT kind, count(*) AS n FROM mev GROUP BY kind) s")"
# the run must have tested something: successful undos and redos, and
# refused ones
for kind in "es_undo%|-> ok|successful undos" "es_redo%|-> ok|successful redos" \
	"es_%|-> 23S03|undos and redos refused with 23S03" "es_%|-> 55S02|undos and redos refused with 55S02"; do
	IFS='|' read -r ops outcome what <<<"$kind"
	n=$(q "$DB" "SELECT coalesce(sum(n), 0) FROM counts WHERE op LIKE '$ops' AND outcome LIKE '% $outcome'")
	if [ "$n" -gt 0 ]; then
		pass "the run had $what ($n)"
	else
		fail "the run had no $what: it tested less than it should"
	fi
done
nprob=$(q "$DB" "SELECT count(*) FROM problems")
if [ "$nprob" -gt 0 ]; then
	echo "first disagreements with the model:"
	q "$DB" "SELECT '    op ' || opno || ': ' || msg FROM problems ORDER BY id LIMIT 20"
fi
check "operations disagreeing with the model (seed $SEED)" "$nprob" 0

echo "seed: $SEED"
es_finish
