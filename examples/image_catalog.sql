--
-- examples/image_catalog.sql: event definitions for the image catalog's
-- audit log (seed 001), categories "image" and "collection".
--
-- Load it with:  psql -v ON_ERROR_STOP=1 -f examples/image_catalog.sql
-- It runs in one transaction and can be loaded again (es_define replaces a
-- definition).
--
-- Every change to the catalog is an event about a target: an image
-- (stream image-<id>) or a collection (stream collection-<id>).  Tags,
-- ratings and edits are changes to an image, so they are events of the
-- image's stream; adding an image to a collection is an event of the
-- collection's stream.  The seed's EventDTO maps onto an event like this:
--
--   id                      -> event_id (es_append generates one if none)
--   timestamp, created_at   -> created_at (set by the database)
--   event_type              -> event_type
--   target_type, target_id  -> the stream <target_type>-<target_id>, and also
--                              the members "target_type" and "target_id" of
--                              the data (every schema requires them)
--   payload                 -> the other members of the data
--   user_id (optional)      -> user_id (NULL for a change made by the system)
--
-- "replay_events" is es_replay('image-<id>') for one image and
-- es_replay_all('image') / es_replay_all('collection') for the whole catalog.
--
-- State of an image stream:
--
--   {
--     "target_type": "image", "target_id": 7,         -- from image_added
--     "path": "/photos/sea.jpg", "width": 4000, ...   -- from image_added, image_moved
--     "added":    {"at": <created_at>, "by": <user_id>},
--     "deleted":  {"at": ..., "by": ...},             -- only while deleted
--     "restored": {"at": ..., "by": ...},             -- last image_restored
--     "tags":     {"<tag>": {"at": ..., "by": ...}, ...},
--     "rating":   {"value": 1..5, "at": ..., "by": ...},   -- only while rated
--     "edits":    [{"edit": {"type": "crop", ...}, "at": ..., "by": ...}, ...]
--   }
--
-- State of a collection stream:
--
--   {
--     "target_type": "collection", "target_id": 3,
--     "name": "Holidays", "description": "...",       -- description optional
--     "created":  {"at": ..., "by": ...},
--     "deleted":  {"at": ..., "by": ...},             -- only once deleted
--     "images":   {"<image id>": {"at": ..., "by": ...}, ...}
--   }
--
-- "at" is the event's created_at and "by" its user_id (null: the system).
--
-- Rules (a failed rule rejects the append with SQLSTATE 23S02, data that
-- does not match its schema with 22S01, an undefined event type with 42S01;
-- nothing is stored):
-- * an image or a collection is created once: its first event must be
--   image_added / collection_created, and these cannot come again, even
--   after a deletion (the stream keeps its history; see image_restored);
-- * every other event requires the target to exist and not to be deleted
--   (image_restored requires it to be deleted), and its data's target_id
--   must be the one the stream was created with;
-- * a tag is added once and only a present tag can be removed; a rating is
--   an integer from 1 to 5; rating_removed needs a rating;
-- * an image is added to a collection once and only a member can be removed.
-- * Every data member must be one the schema names
--   ("additionalProperties": false), so a misspelt field is refused instead
--   of being silently ignored.
--
-- Limits of per-stream definitions: an effect sees only its own stream's
-- state, so a collection cannot check that an image exists or is not
-- deleted, and deleting an image does not remove it from collections.
--

BEGIN;

--
-- Images
--

-- image_added {target_type, target_id, path, [width, height, format,
-- size_bytes, taken_at, title]}: creates the image; its state starts as the
-- event's data, with "added", no tags and no edits
SELECT es_define('image', 'image_added',
    effect => '[
        {"op": "absent", "path": "/added"},
        {"op": "merge",  "path": "", "value": {"$data": ""}},
        {"op": "add",    "path": "/added", "value": {"at": {"$event": "created_at"}, "by": {"$event": "user_id"}}},
        {"op": "add",    "path": "/tags", "value": {}},
        {"op": "add",    "path": "/edits", "value": []}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "path"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "path":        {"type": "string", "minLength": 1},
            "width":       {"type": "integer"},
            "height":      {"type": "integer"},
            "format":      {"type": "string"},
            "size_bytes":  {"type": "integer"},
            "taken_at":    {"type": "string"},
            "title":       {"type": "string"}
        }
    }');

-- image_moved {target_type, target_id, path}: the file was moved or renamed
SELECT es_define('image', 'image_moved',
    effect => '[
        {"op": "exists",  "path": "/added"},
        {"op": "absent",  "path": "/deleted"},
        {"op": "test",    "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "replace", "path": "/path", "value": {"$data": "/path"}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "path"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "path":        {"type": "string", "minLength": 1}
        }
    }');

-- image_deleted {target_type, target_id}: marks the image deleted (its
-- history and state are kept; nothing else can happen to it but
-- image_restored)
SELECT es_define('image', 'image_deleted',
    effect => '[
        {"op": "exists", "path": "/added"},
        {"op": "absent", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "add",    "path": "/deleted", "value": {"at": {"$event": "created_at"}, "by": {"$event": "user_id"}}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1}
        }
    }');

-- image_restored {target_type, target_id}: undoes a deletion
SELECT es_define('image', 'image_restored',
    effect => '[
        {"op": "exists", "path": "/added"},
        {"op": "exists", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "remove", "path": "/deleted"},
        {"op": "add",    "path": "/restored", "value": {"at": {"$event": "created_at"}, "by": {"$event": "user_id"}}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1}
        }
    }');

--
-- Tags (of an image)
--

-- tag_added {target_type, target_id, tag}: the tag must not be there yet
SELECT es_define('image', 'tag_added',
    effect => '[
        {"op": "exists", "path": "/added"},
        {"op": "absent", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "absent", "path": "/tags/{/tag}"},
        {"op": "add",    "path": "/tags/{/tag}", "value": {"at": {"$event": "created_at"}, "by": {"$event": "user_id"}}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "tag"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "tag":         {"type": "string", "minLength": 1, "maxLength": 100}
        }
    }');

-- tag_removed {target_type, target_id, tag}: the tag must be there
SELECT es_define('image', 'tag_removed',
    effect => '[
        {"op": "exists", "path": "/added"},
        {"op": "absent", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "remove", "path": "/tags/{/tag}"}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "tag"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "tag":         {"type": "string", "minLength": 1, "maxLength": 100}
        }
    }');

--
-- Ratings (of an image)
--

-- rating_set {target_type, target_id, rating}: rates the image 1 to 5
-- stars, replacing any earlier rating
SELECT es_define('image', 'rating_set',
    effect => '[
        {"op": "exists", "path": "/added"},
        {"op": "absent", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "add",    "path": "/rating", "value": {"value": {"$data": "/rating"}, "at": {"$event": "created_at"}, "by": {"$event": "user_id"}}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "rating"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "rating":      {"type": "integer", "enum": [1, 2, 3, 4, 5]}
        }
    }');

-- rating_removed {target_type, target_id}: the image must be rated
SELECT es_define('image', 'rating_removed',
    effect => '[
        {"op": "exists", "path": "/added"},
        {"op": "absent", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "remove", "path": "/rating"}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1}
        }
    }');

--
-- Edits (of an image): a non-destructive edit list, applied in order
--

-- image_edited {target_type, target_id, edit: {type, ...}}: appends an edit
SELECT es_define('image', 'image_edited',
    effect => '[
        {"op": "exists", "path": "/added"},
        {"op": "absent", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "add",    "path": "/edits/-", "value": {"edit": {"$data": "/edit"}, "at": {"$event": "created_at"}, "by": {"$event": "user_id"}}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "edit"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "edit":        {"type": "object", "required": ["type"],
                            "properties": {"type": {"type": "string", "minLength": 1}}}
        }
    }');

-- image_edits_reset {target_type, target_id}: back to the original; there
-- must be at least one edit
SELECT es_define('image', 'image_edits_reset',
    effect => '[
        {"op": "exists",  "path": "/added"},
        {"op": "absent",  "path": "/deleted"},
        {"op": "test",    "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "exists",  "path": "/edits/0"},
        {"op": "replace", "path": "/edits", "value": []}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["image"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1}
        }
    }');

--
-- Collections
--

-- collection_created {target_type, target_id, name, [description]}
SELECT es_define('collection', 'collection_created',
    effect => '[
        {"op": "absent", "path": "/created"},
        {"op": "merge",  "path": "", "value": {"$data": ""}},
        {"op": "add",    "path": "/created", "value": {"at": {"$event": "created_at"}, "by": {"$event": "user_id"}}},
        {"op": "add",    "path": "/images", "value": {}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "name"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["collection"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "name":        {"type": "string", "minLength": 1},
            "description": {"type": "string"}
        }
    }');

-- collection_renamed {target_type, target_id, name}
SELECT es_define('collection', 'collection_renamed',
    effect => '[
        {"op": "exists",  "path": "/created"},
        {"op": "absent",  "path": "/deleted"},
        {"op": "test",    "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "replace", "path": "/name", "value": {"$data": "/name"}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "name"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["collection"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "name":        {"type": "string", "minLength": 1}
        }
    }');

-- collection_deleted {target_type, target_id}: no further change is accepted
SELECT es_define('collection', 'collection_deleted',
    effect => '[
        {"op": "exists", "path": "/created"},
        {"op": "absent", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "add",    "path": "/deleted", "value": {"at": {"$event": "created_at"}, "by": {"$event": "user_id"}}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["collection"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1}
        }
    }');

-- image_added_to_collection {target_type, target_id, image_id}: the image
-- must not be in the collection yet
SELECT es_define('collection', 'image_added_to_collection',
    effect => '[
        {"op": "exists", "path": "/created"},
        {"op": "absent", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "absent", "path": "/images/{/image_id}"},
        {"op": "add",    "path": "/images/{/image_id}", "value": {"at": {"$event": "created_at"}, "by": {"$event": "user_id"}}}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "image_id"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["collection"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "image_id":    {"type": ["integer", "string"], "minLength": 1}
        }
    }');

-- image_removed_from_collection {target_type, target_id, image_id}: the
-- image must be in the collection
SELECT es_define('collection', 'image_removed_from_collection',
    effect => '[
        {"op": "exists", "path": "/created"},
        {"op": "absent", "path": "/deleted"},
        {"op": "test",   "path": "/target_id", "value": {"$data": "/target_id"}},
        {"op": "remove", "path": "/images/{/image_id}"}
    ]',
    schema => '{
        "type": "object",
        "required": ["target_type", "target_id", "image_id"],
        "additionalProperties": false,
        "properties": {
            "target_type": {"enum": ["collection"]},
            "target_id":   {"type": ["integer", "string"], "minLength": 1},
            "image_id":    {"type": ["integer", "string"], "minLength": 1}
        }
    }');

COMMIT;
