--
-- 016_image_catalog_definitions: the image catalog's audit log with
-- definitions (examples/image_catalog.sql): images, tags, ratings, edits and
-- collections as events with a target and an optional user; the state of
-- every image and collection by replay; every broken rule refused (23S02,
-- 22S01, 42S01) with nothing stored; time travel and replay of the whole
-- catalog.
--
-- Earlier files left events in categories "image" and "collection": start
-- from a fresh extension.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS eventsourcing CASCADE;
CREATE EXTENSION eventsourcing;
RESET client_min_messages;
\i test/sql/include/expect_error.sql

-- load the definitions (the file's own output is not shown; an error would be)
\set ECHO none
\o /dev/null
\i examples/image_catalog.sql
\o
\set ECHO all
SELECT category, event_type, jsonb_array_length(effect) AS steps,
       schema->'required' AS required
  FROM es.event_types ORDER BY category, event_type;

-- append_event(target_type, target_id, event_type, payload, user_id): the
-- seed's EventDTO mapped onto es_append (stream <target_type>-<target_id>,
-- the target also in the data)
CREATE FUNCTION pg_temp.append_event(p_type text, p_id bigint, p_event text,
                                     p_payload jsonb DEFAULT '{}',
                                     p_user text DEFAULT NULL)
RETURNS TABLE (stream text, sequence_number bigint, event_type text)
LANGUAGE sql AS $$
    SELECT e.stream, e.sequence_number, e.event_type
      FROM es_append(p_type || '-' || p_id, p_event,
                     jsonb_build_object('target_type', p_type, 'target_id', p_id) || p_payload,
                     user_id => p_user) AS e
$$;
-- state(stream [, n]): es_replay with the times ("at") masked
CREATE FUNCTION pg_temp.state(s text, n bigint DEFAULT NULL)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT regexp_replace(es_replay(s, n)::text, '"at": "[^"]*"', '"at": "(time)"', 'g')::jsonb
$$;

--
-- Images
--

-- image_added: two images imported by the system (no user), one by u2
SELECT * FROM pg_temp.append_event('image', 1, 'image_added',
    '{"path": "/photos/2026/sea.jpg", "width": 4000, "height": 3000, "format": "jpeg"}');
SELECT * FROM pg_temp.append_event('image', 2, 'image_added',
    '{"path": "/photos/2026/mountain.jpg", "width": 3000, "height": 4000}');
SELECT * FROM pg_temp.append_event('image', 3, 'image_added',
    '{"path": "/photos/2026/forest.jpg", "title": "Forest"}', 'u2');
SELECT jsonb_pretty(pg_temp.state('image-1')) AS image_1;
SELECT pg_temp.state('image-3') AS image_3;
-- "at" is the event's created_at, "by" its user_id
SELECT (es_replay('image-1')->'added'->>'at')::timestamptz = e.created_at AS added_at_is_created_at,
       es_replay('image-1')->'added'->'by' AS added_by,
       es_replay('image-3')->'added'->'by' AS image_3_added_by
  FROM es_read('image-1', 0, 1) AS e;

-- tag_added, tag_removed (a tag with a slash stays one key)
SELECT * FROM pg_temp.append_event('image', 1, 'tag_added', '{"tag": "sea"}', 'u1');
SELECT * FROM pg_temp.append_event('image', 1, 'tag_added', '{"tag": "summer"}', 'u1');
SELECT * FROM pg_temp.append_event('image', 1, 'tag_added', '{"tag": "b&w/film"}', 'u2');
SELECT pg_temp.state('image-1')->'tags' AS tags;
SELECT * FROM pg_temp.append_event('image', 1, 'tag_removed', '{"tag": "summer"}', 'u1');
SELECT pg_temp.state('image-1')->'tags' AS tags;

-- rating_set (the last one wins), rating_removed
SELECT * FROM pg_temp.append_event('image', 1, 'rating_set', '{"rating": 4}', 'u1');
SELECT pg_temp.state('image-1')->'rating' AS rating;
SELECT * FROM pg_temp.append_event('image', 1, 'rating_set', '{"rating": 5}', 'u2');
SELECT pg_temp.state('image-1')->'rating' AS rating;
SELECT * FROM pg_temp.append_event('image', 2, 'rating_set', '{"rating": 3}', 'u1');
SELECT * FROM pg_temp.append_event('image', 2, 'rating_removed', '{}', 'u1');
SELECT pg_temp.state('image-2') ? 'rating' AS image_2_rated;

-- image_edited (in order), image_edits_reset
SELECT * FROM pg_temp.append_event('image', 1, 'image_edited',
    '{"edit": {"type": "crop", "x": 0, "y": 500, "w": 4000, "h": 2500}}', 'u2');
SELECT * FROM pg_temp.append_event('image', 1, 'image_edited',
    '{"edit": {"type": "exposure", "value": 0.3}}', 'u2');
SELECT n - 1 AS i, e->'edit' AS edit, e->'by' AS by
  FROM jsonb_array_elements(pg_temp.state('image-1')->'edits') WITH ORDINALITY AS x(e, n);
SELECT * FROM pg_temp.append_event('image', 2, 'image_edited', '{"edit": {"type": "rotate", "angle": 90}}', 'u1');
SELECT pg_temp.state('image-2')->'edits' AS edits;
SELECT * FROM pg_temp.append_event('image', 2, 'image_edits_reset', '{}', 'u1');
SELECT pg_temp.state('image-2')->'edits' AS edits;

-- image_moved
SELECT * FROM pg_temp.append_event('image', 1, 'image_moved', '{"path": "/photos/2026/best/sea.jpg"}');
SELECT pg_temp.state('image-1')->'path' AS path;

-- image_deleted; image_restored
SELECT * FROM pg_temp.append_event('image', 3, 'image_deleted', '{}', 'u1');
SELECT s->'added' AS added, s->'deleted' AS deleted, s->>'path' AS path
  FROM pg_temp.state('image-3') AS s;
SELECT * FROM pg_temp.append_event('image', 2, 'image_deleted', '{}', 'u1');
SELECT * FROM pg_temp.append_event('image', 2, 'image_restored', '{}', 'u2');
SELECT s ? 'deleted' AS deleted, s->'restored' AS restored, s->>'path' AS path
  FROM pg_temp.state('image-2') AS s;

--
-- Collections
--

-- collection_created, image_added_to_collection,
-- image_removed_from_collection, collection_renamed, collection_deleted
SELECT * FROM pg_temp.append_event('collection', 7, 'collection_created',
    '{"name": "Holidays 2026", "description": "Summer trip"}', 'u1');
SELECT * FROM pg_temp.append_event('collection', 7, 'image_added_to_collection', '{"image_id": 1}', 'u1');
SELECT * FROM pg_temp.append_event('collection', 7, 'image_added_to_collection', '{"image_id": 2}', 'u2');
SELECT pg_temp.state('collection-7')->'images' AS images;
SELECT * FROM pg_temp.append_event('collection', 7, 'image_removed_from_collection', '{"image_id": 2}', 'u1');
SELECT * FROM pg_temp.append_event('collection', 7, 'collection_renamed', '{"name": "Holidays"}', 'u1');
SELECT jsonb_pretty(pg_temp.state('collection-7')) AS collection_7;
SELECT * FROM pg_temp.append_event('collection', 8, 'collection_created', '{"name": "Scratch"}', 'u2');
SELECT * FROM pg_temp.append_event('collection', 8, 'collection_deleted', '{}', 'u2');
SELECT s->>'name' AS name, s->'deleted' AS deleted FROM pg_temp.state('collection-8') AS s;

--
-- Rejections: nothing is stored
--
SELECT count(*) AS events_before FROM es.events \gset

-- Invalid input: rating, tagging, editing, moving, deleting the deleted image 3
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 3, 'rating_set', '{"rating": 2}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 3, 'tag_added', '{"tag": "trees"}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 3, 'image_edited', '{"edit": {"type": "crop"}}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 3, 'image_moved', '{"path": "/x.jpg"}')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 3, 'image_deleted', '{}', 'u1')$$);
-- Invalid input: rating and tagging an image that was never added
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 99, 'rating_set', '{"rating": 2}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 99, 'tag_added', '{"tag": "x"}', 'u1')$$);
-- Invalid input: adding an image twice, and again after its deletion
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'image_added', '{"path": "/photos/2026/sea.jpg"}')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 3, 'image_added', '{"path": "/photos/2026/forest.jpg"}')$$);
-- Invalid input: restoring an image that is not deleted
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'image_restored', '{}', 'u1')$$);
-- Invalid input: removing a tag that is not there, adding one that is
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'tag_removed', '{"tag": "winter"}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'tag_added', '{"tag": "b&w/film"}', 'u1')$$);
-- Invalid input: removing the rating of an image that has none
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 2, 'rating_removed', '{}', 'u1')$$);
-- Invalid input: resetting the edits of an image that has none
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 2, 'image_edits_reset', '{}', 'u1')$$);
-- Invalid input: ratings out of range or of the wrong type
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'rating_set', '{"rating": 6}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'rating_set', '{"rating": 0}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'rating_set', '{"rating": 4.5}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'rating_set', '{"rating": "5"}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'rating_set', '{}', 'u1')$$);
-- Invalid input: an empty tag, a misspelt member, an edit without a type,
-- an image without a path
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'tag_added', '{"tag": ""}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'tag_added', '{"tag": "sky", "colour": "blue"}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'image_edited', '{"edit": {"value": 1}}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 4, 'image_added', '{"width": 10}')$$);
-- Invalid input: a target that is not the stream's (the data names image 2
-- in the stream of image 1; the data names a collection in an image stream)
CALL pg_temp.expect_error($$SELECT es_append('image-1', 'tag_added', '{"target_type": "image", "target_id": 2, "tag": "x"}')$$);
CALL pg_temp.expect_error($$SELECT es_append('image-1', 'tag_added', '{"target_type": "collection", "target_id": 1, "tag": "x"}')$$);
-- Invalid input: no target at all
CALL pg_temp.expect_error($$SELECT es_append('image-1', 'tag_added', '{"tag": "x"}')$$);
-- Invalid input: event types the category does not define
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 1, 'image_liked', '{}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('collection', 7, 'tag_added', '{"tag": "x"}', 'u1')$$);
-- Invalid input: collections: created twice, an image added twice, removing
-- an image that is not in it, changing a deleted collection
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('collection', 7, 'collection_created', '{"name": "Again"}', 'u1')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('collection', 7, 'image_added_to_collection', '{"image_id": 1}', 'u2')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('collection', 7, 'image_removed_from_collection', '{"image_id": 2}', 'u2')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('collection', 8, 'collection_renamed', '{"name": "Keep"}', 'u2')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('collection', 8, 'image_added_to_collection', '{"image_id": 1}', 'u2')$$);
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('collection', 9, 'image_added_to_collection', '{"image_id": 1}', 'u2')$$);
-- Invalid input: a batch is all or nothing: the tag is not added because the
-- rating after it is refused
CALL pg_temp.expect_error($$SELECT es_append_batch('image-1', '[
        {"event_type": "tag_added", "data": {"target_type": "image", "target_id": 1, "tag": "blue"}, "user_id": "u1"},
        {"event_type": "rating_set", "data": {"target_type": "image", "target_id": 1, "rating": 9}, "user_id": "u1"}
       ]')$$);

-- nothing was stored
SELECT count(*) = :events_before AS nothing_stored FROM es.events;
SELECT stream, version FROM es.streams ORDER BY stream;
SELECT pg_temp.state('image-1')->'tags' AS image_1_tags;

--
-- Time travel: image 1 after each of its events
--
SELECT e.sequence_number AS n, e.event_type, e.user_id,
       s->>'path' AS path,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(s->'tags') AS k) AS tags,
       s->'rating'->'value' AS rating,
       jsonb_array_length(s->'edits') AS edits
  FROM es_read('image-1') AS e,
       LATERAL es_replay('image-1', e.sequence_number) AS s
 ORDER BY e.sequence_number;
-- image 2 before its deletion, deleted, restored
SELECT n, pg_temp.state('image-2', n) ? 'deleted' AS deleted,
       pg_temp.state('image-2', n) ? 'restored' AS restored
  FROM generate_series(5, 7) AS n;
SELECT pg_temp.state('image-1', 0) AS at_0, pg_temp.state('image-1', 1) ? 'added' AS added_at_1;
-- es_replay_at: now is the current state, before the first event is {}
SELECT es_replay_at('image-1', clock_timestamp()) = es_replay('image-1') AS now_is_current,
       es_replay_at('image-1', '-infinity') AS before_everything;

--
-- Replay all: the whole catalog
--
SELECT stream, version, state->'path' AS path,
       state ? 'deleted' AS deleted,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(state->'tags') AS k) AS tags,
       state->'rating'->'value' AS rating,
       jsonb_array_length(state->'edits') AS edits
  FROM es_replay_all('image');
SELECT stream, version,
       regexp_replace(state::text, '"at": "[^"]*"', '"at": "(time)"', 'g')::jsonb AS state
  FROM es_replay_all('collection');
-- every image of a collection, with its current state
SELECT c.stream AS collection, i.key AS image, im.state->>'path' AS path,
       im.state->'rating'->'value' AS rating
  FROM es_replay_all('collection') AS c,
       LATERAL jsonb_each(c.state->'images') AS i
       JOIN es_replay_all('image') AS im ON im.stream = 'image-' || i.key
 ORDER BY 1, 2;
