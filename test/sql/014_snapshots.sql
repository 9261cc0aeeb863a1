--
-- 014_snapshots: automatic snapshots every eventsourcing.snapshot_every
-- events, es_snapshot, snapshots used by es_replay (a doctored snapshot
-- shows through), snapshots of other definitions ignored, and a long
-- randomized history whose replays agree with and without snapshots and
-- cache.  Categories "snap", "snapfree" (no definitions) and "snapr".
--
\i test/sql/include/expect_error.sql

SELECT es_version('snap-1') AS loads_the_library;
SHOW eventsourcing.snapshot_every;
SET eventsourcing.snapshot_every = 5;
SHOW eventsourcing.snapshot_every;

SELECT es_define('snap', 'put',
                 '[{"op": "merge", "path": "", "value": {"vals": {}}},
                   {"op": "add", "path": "/vals/{/k}", "value": {"$data": "/v"}}]');
SELECT es_define('snap', 'drop', '[{"op": "remove", "path": "/vals/{/k}"}]');

--
-- Automatic snapshots
--
-- 12 events, one statement: snapshots after events 5 and 10
INSERT INTO es.events (stream, event_type, data)
SELECT 'snap-1', 'put', jsonb_build_object('k', 'k' || i, 'v', i)
  FROM generate_series(1, 12) AS i;
SELECT stream, sequence_number,
       (SELECT count(*) FROM jsonb_object_keys(state->'vals')) AS vals
  FROM es.snapshots WHERE stream LIKE 'snap-%' ORDER BY stream, sequence_number;
-- a batch over the next multiple of 5, and single appends
SELECT sequence_number FROM es_append_batch('snap-1', '[{"event_type": "put", "data": {"k": "k13", "v": 13}},
                                                        {"event_type": "put", "data": {"k": "k14", "v": 14}},
                                                        {"event_type": "drop", "data": {"k": "k1"}},
                                                        {"event_type": "put", "data": {"k": "k16", "v": 16}}]');
SELECT sequence_number FROM es_append('snap-1', 'put', '{"k": "k17", "v": 17}');
SELECT sequence_number FROM es_append('snap-1', 'put', '{"k": "k18", "v": 18}');
SELECT sequence_number FROM es_append('snap-1', 'put', '{"k": "k19", "v": 19}');
SELECT sequence_number FROM es_append('snap-1', 'drop', '{"k": "k2"}');
-- a snapshot holds the state after its event
SELECT stream, sequence_number, state = es_replay(stream, sequence_number) AS same_state,
       state->'vals' ? 'k1' AS has_k1, state->'vals' ? 'k2' AS has_k2,
       (SELECT count(*) FROM jsonb_object_keys(state->'vals')) AS vals
  FROM es.snapshots WHERE stream LIKE 'snap-%' ORDER BY stream, sequence_number;
-- a refused append takes no snapshot, a rolled-back one leaves none
-- Invalid input: event 21 would drop a missing value (23S02)
CALL pg_temp.expect_error($$SELECT es_append('snap-1', 'drop', '{"k": "k2"}')$$);
BEGIN;
SELECT sequence_number FROM es_append_batch('snap-1', '[{"event_type": "put", "data": {"k": "a", "v": 0}},
                                                        {"event_type": "put", "data": {"k": "b", "v": 0}},
                                                        {"event_type": "put", "data": {"k": "c", "v": 0}},
                                                        {"event_type": "put", "data": {"k": "d", "v": 0}},
                                                        {"event_type": "put", "data": {"k": "e", "v": 0}}]');
SELECT count(*) AS snapshot_25_in_transaction FROM es.snapshots
 WHERE stream = 'snap-1' AND sequence_number = 25;
ROLLBACK;
SELECT count(*) AS snapshot_25_after_rollback FROM es.snapshots
 WHERE stream = 'snap-1' AND sequence_number = 25;

-- 0: no automatic snapshots
SET eventsourcing.snapshot_every = 0;
INSERT INTO es.events (stream, event_type, data)
SELECT 'snap-2', 'put', jsonb_build_object('k', 'k' || i, 'v', i)
  FROM generate_series(1, 10) AS i;
SELECT count(*) AS snap_2_snapshots FROM es.snapshots WHERE stream = 'snap-2';
SET eventsourcing.snapshot_every = 5;
-- no snapshots in a category without definitions
INSERT INTO es.events (stream, event_type, data)
SELECT 'snapfree-1', 'put', jsonb_build_object('k', 'k' || i, 'v', i)
  FROM generate_series(1, 6) AS i;
SELECT count(*) AS snapfree_snapshots FROM es.snapshots WHERE stream LIKE 'snapfree-%';

--
-- es_snapshot
--
-- the current version, written once
SELECT es_snapshot('snap-2') AS version;
SELECT es_snapshot('snap-2') AS version_again;
SELECT stream, sequence_number, (SELECT count(*) FROM jsonb_object_keys(state->'vals')) AS vals
  FROM es.snapshots WHERE stream = 'snap-2';
-- at a version that already has an automatic snapshot: kept, one row
SELECT es_snapshot('snap-1') AS version;
SELECT count(*) AS rows_at_20 FROM es.snapshots WHERE stream = 'snap-1' AND sequence_number = 20;
-- a stream without events: 0, nothing written
SELECT es_snapshot('snap-3') AS empty_stream;
SELECT count(*) AS snap_3_snapshots FROM es.snapshots WHERE stream = 'snap-3';
-- Invalid input: a category without definitions (55000)
CALL pg_temp.expect_error($$SELECT es_snapshot('snapfree-1')$$);
-- Invalid input: a stream without events of a category without definitions (55000)
CALL pg_temp.expect_error($$SELECT es_snapshot('snapfree-2')$$);
-- Invalid input: NULL stream (22004)
CALL pg_temp.expect_error($$SELECT es_snapshot(NULL)$$);
-- Invalid input: an invalid stream name (22023)
CALL pg_temp.expect_error($$SELECT es_snapshot('snap')$$);
-- the same error as a client sees it
SELECT es_snapshot('snapfree-1');

--
-- Replays start from the nearest snapshot: a doctored snapshot shows
-- through (without the cache, which would hide it)
--
SET eventsourcing.state_cache_size = 0;
UPDATE es.snapshots SET state = '{"bogus": true}'
 WHERE stream = 'snap-1' AND sequence_number = 5;
SELECT s AS at_sequence, es_replay('snap-1', s) ? 'bogus' AS bogus,
       (SELECT count(*) FROM jsonb_object_keys(es_replay('snap-1', s)->'vals')) AS vals
  FROM generate_series(4, 11) AS s ORDER BY s;
SELECT es_replay('snap-1', 7) AS doctored_7;
-- deleting the snapshots never changes a correct result
DELETE FROM es.snapshots WHERE stream LIKE 'snap-%';
SELECT s AS at_sequence, es_replay('snap-1', s) ? 'bogus' AS bogus,
       (SELECT count(*) FROM jsonb_object_keys(es_replay('snap-1', s)->'vals')) AS vals
  FROM generate_series(4, 11) AS s ORDER BY s;
SELECT es_replay('snap-1', 7) AS correct_7;

-- a snapshot taken under other definitions is ignored
SELECT es_snapshot('snap-1') AS version;
UPDATE es.snapshots SET state = '{"bogus": true}'
 WHERE stream = 'snap-1' AND sequence_number = 20;
SELECT es_replay('snap-1') AS doctored_head;
-- a schema takes no part in the fold: the same effects with a new schema
-- keep the snapshot
SELECT es_define('snap', 'drop', '[{"op": "remove", "path": "/vals/{/k}"}]',
                 '{"type": "object", "required": ["k"]}');
SELECT es_replay('snap-1') AS doctored_head_new_schema;
-- another effect: other definitions, the snapshot is ignored
SELECT es_define('snap', 'drop',
                 '[{"op": "exists", "path": "/vals/{/k}"}, {"op": "remove", "path": "/vals/{/k}"}]',
                 '{"type": "object", "required": ["k"]}');
SELECT es_replay('snap-1') ? 'bogus' AS bogus,
       (SELECT count(*) FROM jsonb_object_keys(es_replay('snap-1')->'vals')) AS vals;
SELECT es_replay('snap-1', 20) ? 'bogus' AS bogus_at_20;
-- a new snapshot is written under the new definitions
SELECT sequence_number FROM es_append('snap-1', 'put', '{"k": "k21", "v": 21}');
SELECT es_snapshot('snap-1') AS version;
SELECT sequence_number, state ? 'bogus' AS bogus FROM es.snapshots
 WHERE stream = 'snap-1' ORDER BY sequence_number;
SELECT count(DISTINCT definitions_hash) AS hashes FROM es.snapshots WHERE stream = 'snap-1';
-- a change in another category does not invalidate these snapshots
UPDATE es.snapshots SET state = '{"bogus": 2}'
 WHERE stream = 'snap-1' AND sequence_number = 21;
SELECT es_define('snapother', 'x', '[]');
SELECT es_replay('snap-1') AS doctored_head_21;
DELETE FROM es.snapshots WHERE stream LIKE 'snap-%';
RESET eventsourcing.state_cache_size;
SELECT (SELECT count(*) FROM jsonb_object_keys(es_replay('snap-1')->'vals')) AS vals;

--
-- A cache smaller than the states: six streams of 400 kB states, appended
-- to in turn, each append depending on the stream's previous one
--
SET eventsourcing.state_cache_size = 1;
INSERT INTO es.events (stream, event_type, data)
SELECT 'snap-e' || n, 'put', jsonb_build_object('k', 'pad', 'v', repeat('p', 400000))
  FROM generate_series(1, 6) AS n;
DO $$
DECLARE
    refused int := 0;
BEGIN
    FOR r IN 1 .. 5 LOOP
        FOR n IN 1 .. 6 LOOP
            PERFORM es_append('snap-e' || n, 'put', jsonb_build_object('k', 'r' || r, 'v', r));
            IF r > 1 THEN
                PERFORM es_append('snap-e' || n, 'drop', jsonb_build_object('k', 'r' || r - 1));
                BEGIN
                    PERFORM es_append('snap-e' || n, 'drop', jsonb_build_object('k', 'r' || r - 1));
                EXCEPTION WHEN SQLSTATE '23S02' THEN
                    refused := refused + 1;
                END;
            END IF;
        END LOOP;
    END LOOP;
    RAISE NOTICE 'refused % second drops', refused;
END
$$;
SELECT stream, version, jsonb_object_keys(state->'vals') AS vals
  FROM es_replay_all('snap') WHERE stream LIKE 'snap-e%' ORDER BY stream, vals;
SET eventsourcing.state_cache_size = 0;
SELECT count(*) FILTER (WHERE state IS DISTINCT FROM es_replay(stream)) AS mismatches_without_cache
  FROM es_replay_all('snap') WHERE stream LIKE 'snap-e%';
RESET eventsourcing.state_cache_size;
DELETE FROM es.snapshots WHERE stream LIKE 'snap-e%';

--
-- A long randomized history: replays agree with snapshots and cache, with
-- snapshots only, and with neither
--
SELECT es_define('snapr', 'add',
                 '[{"op": "merge", "path": "", "value": {"m": {}}},
                   {"op": "absent", "path": "/m/{/k}"},
                   {"op": "add", "path": "/m/{/k}",
                    "value": {"v": {"$data": "/v"}, "hist": [], "at": {"$event": "sequence_number"}}}]');
SELECT es_define('snapr', 'set', '[{"op": "replace", "path": "/m/{/k}/v", "value": {"$data": "/v"}}]');
SELECT es_define('snapr', 'del', '[{"op": "remove", "path": "/m/{/k}"}]');
SELECT es_define('snapr', 'push', '[{"op": "add", "path": "/m/{/k}/hist/-", "value": {"$data": "/v"}}]');
SELECT es_define('snapr', 'unpush',
                 '[{"op": "exists", "path": "/m/{/k}"},
                   {"op": "remove_where", "path": "/m/{/k}/hist", "where": [{"pointer": "", "equals": {"$data": "/v"}}]}]');
SELECT es_define('snapr', 'mv',
                 '[{"op": "absent", "path": "/m/{/to}"},
                   {"op": "move", "from": "/m/{/k}", "path": "/m/{/to}"}]');
SELECT es_define('snapr', 'tick',
                 '[{"op": "merge", "path": "", "value": {"meta": {"n": {"$event": "sequence_number"}, "who": {"$event": "username"}}}}]');
SET eventsourcing.snapshot_every = 7;

-- 2000 attempts on 4 streams, committed every 100: most append, some are
-- refused (23S02), some append and are rolled back, some are batches
CREATE PROCEDURE pg_temp.random_history(attempts int)
LANGUAGE plpgsql AS $$
DECLARE
    stream text;
    t text;
    d jsonb;
    r float8;
    appended int := 0;
    rejected int := 0;
    undone int := 0;
    batches int := 0;
BEGIN
    PERFORM setseed(0.4242);
    FOR i IN 1 .. attempts LOOP
        stream := 'snapr-' || (1 + floor(random() * 4))::int;
        r := random();
        t := CASE WHEN r < 0.30 THEN 'add' WHEN r < 0.50 THEN 'set'
                  WHEN r < 0.60 THEN 'del' WHEN r < 0.75 THEN 'push'
                  WHEN r < 0.82 THEN 'unpush' WHEN r < 0.90 THEN 'mv'
                  ELSE 'tick' END;
        d := jsonb_build_object('k', 'k' || floor(random() * 8)::int,
                                'v', floor(random() * 4)::int,
                                'to', 'k' || floor(random() * 8)::int);
        r := random();
        BEGIN
            IF r < 0.05 THEN
                PERFORM es_append(stream, t, d, username => 'u' || i % 3);
                RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
            ELSIF r < 0.10 THEN
                PERFORM es_append_batch(stream,
                            jsonb_build_array(jsonb_build_object('event_type', t, 'data', d),
                                              jsonb_build_object('event_type', 'tick', 'data', '{}'::jsonb,
                                                                 'username', 'batch')));
                batches := batches + 1;
            ELSE
                PERFORM es_append(stream, t, d, username => 'u' || i % 3);
            END IF;
            appended := appended + 1;
        EXCEPTION
            WHEN SQLSTATE '23S02' THEN rejected := rejected + 1;
            WHEN SQLSTATE 'P0001' THEN undone := undone + 1;
        END;
        IF i % 100 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
    RAISE NOTICE 'appended %, of which % batches; refused %; rolled back %',
        appended, batches, rejected, undone;
END
$$;
CALL pg_temp.random_history(2000);
SELECT stream, version FROM es.streams WHERE category = 'snapr' ORDER BY stream;
SELECT count(*) AS snapshots, bool_and(sequence_number % 7 = 0) AS every_7th,
       (SELECT sum(version / 7) FROM es.streams WHERE category = 'snapr') AS multiples_of_7
  FROM es.snapshots WHERE stream LIKE 'snapr-%';

-- every sequence number of every stream, three ways
CREATE TEMP TABLE positions AS
SELECT stream, s FROM es.streams, generate_series(0, version) AS s
 WHERE category = 'snapr';
CREATE TEMP TABLE snapshots_taken AS
SELECT stream, sequence_number, state FROM es.snapshots WHERE stream LIKE 'snapr-%';
-- snapshots and cache
CREATE TEMP TABLE replay_cached AS
SELECT stream, s, es_replay(stream, s) AS state FROM positions;
-- snapshots, no cache
SET eventsourcing.state_cache_size = 0;
CREATE TEMP TABLE replay_snapshots AS
SELECT stream, s, es_replay(stream, s) AS state FROM positions;
-- neither
DELETE FROM es.snapshots WHERE stream LIKE 'snapr-%';
CREATE TEMP TABLE replay_plain AS
SELECT stream, s, es_replay(stream, s) AS state FROM positions;
RESET eventsourcing.state_cache_size;
SELECT count(*) AS positions,
       count(*) FILTER (WHERE c.state IS DISTINCT FROM p.state) AS cached_mismatches,
       count(*) FILTER (WHERE n.state IS DISTINCT FROM p.state) AS snapshot_mismatches
  FROM replay_plain p
  JOIN replay_cached c USING (stream, s)
  JOIN replay_snapshots n USING (stream, s);
-- every snapshot taken held the right state
SELECT count(*) AS snapshots_compared,
       count(*) FILTER (WHERE t.state IS DISTINCT FROM p.state) AS snapshot_state_mismatches
  FROM snapshots_taken t JOIN replay_plain p ON p.stream = t.stream AND p.s = t.sequence_number;
-- the histories are not trivial
SELECT count(DISTINCT state) AS distinct_states,
       max(jsonb_array_length(coalesce(state->'m'->'k0'->'hist', '[]'))) AS longest_hist
  FROM replay_plain;
SELECT es_replay('snapr-1', 0) AS empty, es_replay('snapr-1', 1) AS first;

RESET eventsourcing.snapshot_every;
SHOW eventsourcing.snapshot_every;
