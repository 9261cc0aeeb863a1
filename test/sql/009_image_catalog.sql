--
-- 009_image_catalog: the image catalog's audit log.  Every change to an
-- image, a collection, a tag, a rating or an edit is an event with a UUID,
-- a timestamp, a target (type and id, in data) and an optional user.
-- Streams: image-<uuid>, collection-<id>.
--
\i test/sql/include/expect_error.sql

\i test/sql/include/wait_for_readers.sql
CALL pg_temp.wait_for_readers();
SELECT coalesce((SELECT global_position
                   FROM es_read_all() WITH ORDINALITY AS r(
                            global_position, stream, category, sequence_number,
                            event_id, event_type, data, metadata, user_id,
                            username, created_at, transaction_id, db_role, n)
                  ORDER BY n DESC LIMIT 1), 0) AS start \gset

-- append_event(event): the catalog's DTO mapped onto es_append
CREATE FUNCTION pg_temp.append_event(target_type text, target_id text,
                                     event_type text, payload jsonb,
                                     id uuid, user_id text DEFAULT NULL)
RETURNS TABLE (stream text, sequence_number bigint) LANGUAGE sql AS $$
    SELECT stream, sequence_number
      FROM es_append(target_type || '-' || target_id, event_type,
                     jsonb_build_object('target_type', target_type,
                                        'target_id', target_id) || payload,
                     event_id => id, user_id => user_id)
$$;

-- two images are imported by the system (no user)
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000001', 'image_added',
                                   '{"path": "/photos/2026/sea.jpg", "width": 4000, "height": 3000}',
                                   '00000000-0000-4000-8000-000000009001');
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000002', 'image_added',
                                   '{"path": "/photos/2026/mountain.jpg", "width": 3000, "height": 4000}',
                                   '00000000-0000-4000-8000-000000009002');
-- a user tags, rates and edits them
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000001', 'tag_added',
                                   '{"tag": "sea"}', '00000000-0000-4000-8000-000000009003', 'u1');
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000001', 'tag_added',
                                   '{"tag": "summer"}', '00000000-0000-4000-8000-000000009004', 'u1');
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000001', 'rating_set',
                                   '{"rating": 4}', '00000000-0000-4000-8000-000000009005', 'u1');
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000002', 'image_edited',
                                   '{"edit": {"type": "crop", "x": 0, "y": 500, "w": 3000, "h": 3000}}',
                                   '00000000-0000-4000-8000-000000009006', 'u2');
-- a collection is created and receives both images
SELECT * FROM pg_temp.append_event('collection', '7', 'collection_created',
                                   '{"name": "Holidays 2026"}', '00000000-0000-4000-8000-000000009007', 'u1');
SELECT * FROM pg_temp.append_event('collection', '7', 'image_added_to_collection',
                                   '{"image_id": "a1b2c3d4-0000-4000-8000-000000000001"}',
                                   '00000000-0000-4000-8000-000000009008', 'u1');
SELECT * FROM pg_temp.append_event('collection', '7', 'image_added_to_collection',
                                   '{"image_id": "a1b2c3d4-0000-4000-8000-000000000002"}',
                                   '00000000-0000-4000-8000-000000009009', 'u2');
-- further changes
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000001', 'tag_removed',
                                   '{"tag": "summer"}', '00000000-0000-4000-8000-000000009010', 'u2');
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000001', 'rating_set',
                                   '{"rating": 5}', '00000000-0000-4000-8000-000000009011', 'u2');
SELECT * FROM pg_temp.append_event('collection', '7', 'image_removed_from_collection',
                                   '{"image_id": "a1b2c3d4-0000-4000-8000-000000000002"}',
                                   '00000000-0000-4000-8000-000000009012', 'u1');
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000002', 'image_deleted',
                                   '{}', '00000000-0000-4000-8000-000000009013');
-- a retried append (same UUID, same content) is stored once
SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000002', 'image_deleted',
                                   '{}', '00000000-0000-4000-8000-000000009013');
-- Invalid input: the same UUID for another change
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', 'a1b2c3d4-0000-4000-8000-000000000002', 'image_restored', '{}', '00000000-0000-4000-8000-000000009013')$$);
-- Invalid input: a target type that is not a valid category
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('Image', '1', 'image_added', '{}', '00000000-0000-4000-8000-000000009014')$$);
-- Invalid input: an empty target id
CALL pg_temp.expect_error($$SELECT * FROM pg_temp.append_event('image', '', 'image_added', '{}', '00000000-0000-4000-8000-000000009014')$$);

-- get_events: the whole log, in commit order
CALL pg_temp.wait_for_readers();
SELECT event_id, event_type, data->>'target_type' AS target_type,
       data->>'target_id' AS target_id, user_id
  FROM es_read_all(:start);
-- every event has a UUID, a timestamp and a target
SELECT count(*) AS events,
       count(*) FILTER (WHERE created_at IS NOT NULL) AS with_time,
       count(*) FILTER (WHERE data ? 'target_type' AND data ? 'target_id') AS with_target,
       count(*) FILTER (WHERE user_id IS NULL) AS by_the_system
  FROM es_read_all(:start);
-- created_at never decreases in commit order here (one session)
SELECT bool_and(created_at >= prev) AS time_ordered
  FROM (SELECT created_at, lag(created_at) OVER (ORDER BY n) AS prev
          FROM es_read_all(:start) WITH ORDINALITY AS r(
                   global_position, stream, category, sequence_number, event_id,
                   event_type, data, metadata, user_id, username, created_at,
                   transaction_id, db_role, n)) s
 WHERE prev IS NOT NULL;

-- the image category only, and the collection category only
SELECT stream, sequence_number, event_type FROM es_read_all(:start, NULL, 'image');
SELECT stream, sequence_number, event_type FROM es_read_all(:start, NULL, 'collection');
-- the first three image events, then the next two after the last one seen
SELECT stream, sequence_number, event_type FROM es_read_all(:start, 3, 'image');
SELECT global_position AS seen
  FROM es_read_all(:start, 3, 'image') WITH ORDINALITY
 ORDER BY ordinality DESC LIMIT 1 \gset
SELECT stream, sequence_number, event_type FROM es_read_all(:seen, 2, 'image');

-- the history of one image
SELECT sequence_number, event_type, data - 'target_type' - 'target_id' AS change, user_id
  FROM es_read('image-a1b2c3d4-0000-4000-8000-000000000001');

-- replay_events: the current state of each image and of the collection,
-- folded from their streams
SELECT data->>'target_id' AS image,
       (array_agg(data->>'path') FILTER (WHERE event_type = 'image_added'))[1] AS path,
       (array_agg((data->>'rating')::int ORDER BY sequence_number DESC)
            FILTER (WHERE event_type = 'rating_set'))[1] AS rating,
       count(*) FILTER (WHERE event_type = 'image_edited') AS edits,
       bool_or(event_type = 'image_deleted') AS deleted
  FROM es.events WHERE category = 'image' AND stream LIKE 'image-a1b2c3d4-%'
 GROUP BY data->>'target_id' ORDER BY 1;
SELECT string_agg(tag, ',' ORDER BY tag) AS tags
  FROM (SELECT data->>'tag' AS tag,
               (array_agg(event_type ORDER BY sequence_number DESC))[1] AS last_event
          FROM es_read('image-a1b2c3d4-0000-4000-8000-000000000001')
         WHERE event_type IN ('tag_added', 'tag_removed')
         GROUP BY data->>'tag') t
 WHERE last_event = 'tag_added';
SELECT string_agg(image, ',' ORDER BY image) AS collection_7
  FROM (SELECT data->>'image_id' AS image,
               (array_agg(event_type ORDER BY sequence_number DESC))[1] AS last_event
          FROM es_read('collection-7')
         WHERE event_type LIKE 'image_%_collection'
         GROUP BY data->>'image_id') c
 WHERE last_event = 'image_added_to_collection';

-- every event about an image, wherever it was recorded
SELECT stream, sequence_number, event_type
  FROM es.events
 WHERE data @> '{"target_id": "a1b2c3d4-0000-4000-8000-000000000002"}'
    OR data @> '{"image_id": "a1b2c3d4-0000-4000-8000-000000000002"}'
 ORDER BY global_position;

-- per user
SELECT coalesce(user_id, '(system)') AS user_id, count(*) AS changes
  FROM es_read_all(:start) GROUP BY user_id ORDER BY 1;
