--
-- 011_define: es_define and es.event_types.  A definition is registered,
-- then replaced in place; a plain INSERT or UPDATE of es.event_types is
-- held to the same checks; every malformed effect, schema, category or
-- event type is refused when it is stored (42P17), with the step, op, path
-- and reason in the detail; the new tables are dumped by pg_dump.
-- Category "doc" (and "docx" for the schema cross-checks).
--
\i test/sql/include/expect_error.sql

--
-- Registering and replacing
--
SELECT es_define('doc', 'page_add',
                 '[{"op": "merge", "path": "", "value": {"pages": {}}},
                   {"op": "absent", "path": "/pages/{/id}"},
                   {"op": "add", "path": "/pages/{/id}", "value": {"$data": "/page"}}]',
                 '{"type": "object", "required": ["id", "page"],
                   "properties": {"id": {"type": "string", "minLength": 1},
                                  "page": {"type": "object"}}}') AS defined;
SELECT category, event_type, effect, schema, updated_at <= now() AS updated_now
  FROM es.event_types WHERE category = 'doc';

-- es_define of the same type replaces the row: new effect, new schema (here
-- none), a later updated_at, still one row
CREATE TEMP TABLE before_replace AS
SELECT updated_at FROM es.event_types WHERE category = 'doc' AND event_type = 'page_add';
SELECT pg_sleep(0.01);
SELECT es_define('doc', 'page_add',
                 '[{"op": "merge", "path": "", "value": {"pages": {}}},
                   {"op": "add", "path": "/pages/{/id}", "value": {"$data": "/page"}}]');
SELECT t.event_type, t.effect, t.schema, t.updated_at > b.updated_at AS updated_later
  FROM es.event_types t, before_replace b
 WHERE t.category = 'doc';
-- and back, with a schema again
SELECT es_define('doc', 'page_add',
                 '[{"op": "merge", "path": "", "value": {"pages": {}}},
                   {"op": "absent", "path": "/pages/{/id}"},
                   {"op": "add", "path": "/pages/{/id}", "value": {"$data": "/page"}}]',
                 '{"type": "object", "required": ["id", "page"],
                   "properties": {"id": {"type": "string", "minLength": 1},
                                  "page": {"type": "object"}}}');
SELECT count(*) AS rows, bool_and(schema IS NOT NULL) AS has_schema
  FROM es.event_types WHERE category = 'doc' AND event_type = 'page_add';

-- every op, every kind of reference and a schema using every keyword
SELECT es_define('doc', 'everything',
                 $$[{"op": "merge", "path": "", "value": {"pages": {}, "log": {}}},
                    {"op": "exists", "path": "/pages"},
                    {"op": "absent", "path": "/pages/{/id}/title"},
                    {"op": "add", "path": "/log/{/id}",
                     "value": {"seq": {"$event": "sequence_number"}, "at": {"$event": "created_at"},
                               "user": {"$event": "user_id"}, "name": {"$event": "username"},
                               "type": {"$event": "event_type"}, "client": {"$meta": "/client"},
                               "all": {"$data": ""}, "raw": {"$literal": {"$data": "/id"}}}},
                    {"op": "test", "path": "/log/{/id}/type", "value": "everything"},
                    {"op": "replace", "path": "/log/{/id}/all", "value": [1, "~", {"a/b": null}]},
                    {"op": "copy", "from": "/log/{/id}", "path": "/log/{/id}~1copy"},
                    {"op": "move", "from": "/log/{/id}~1copy", "path": "/log/{/id}~0moved"},
                    {"op": "remove", "path": "/log/{/id}~0moved"},
                    {"op": "add", "path": "/pages/{/id}", "value": {"$data": "/page"}},
                    {"op": "remove_where", "path": "/pages",
                     "where": [{"pointer": "/draft", "equals": true},
                               {"pointer": "/title", "equals": {"$data": "/drop"}}]}]$$,
                 '{"title": "every keyword", "description": "of the schema subset",
                   "type": ["object"], "required": ["id"], "additionalProperties": true,
                   "properties": {"id": {"type": ["string", "integer"], "minLength": 1, "maxLength": 20},
                                  "page": {"type": "object", "properties": {"draft": {"type": "boolean"}}},
                                  "drop": {"type": ["string", "null"]},
                                  "kind": {"enum": ["a", "b", 3]},
                                  "tags": {"type": "array", "items": {"type": "string"}},
                                  "n": {"type": "number"}}}');
-- the empty effect and the empty schema are valid
SELECT es_define('doc', 'noop', '[]', '{}');
-- a path may name an array element or an object member "01": only an
-- array makes "01" invalid, which is known when the effect applies
SELECT es_define('doc', 'numbered', '[{"op": "add", "path": "/list/01", "value": 1}, {"op": "add", "path": "/list/-", "value": 2}]');

--
-- A plain INSERT and UPDATE of es.event_types are checked the same way
--
INSERT INTO es.event_types (category, event_type, effect)
VALUES ('doc', 'page_remove', '[{"op": "remove", "path": "/pages/{/id}"}]');
-- Invalid input: INSERT of an effect with an unknown op (42P17)
CALL pg_temp.expect_error($$INSERT INTO es.event_types (category, event_type, effect) VALUES ('doc', 'page_rename', '[{"op": "rename", "path": "/pages/{/id}"}]')$$);
-- Invalid input: INSERT of a schema with an unknown keyword (42P17)
CALL pg_temp.expect_error($$INSERT INTO es.event_types (category, event_type, effect, schema) VALUES ('doc', 'page_rename', '[]', '{"type": "object", "pattern": "^p"}')$$);
-- Invalid input: INSERT with an invalid category (22023, as everywhere)
CALL pg_temp.expect_error($$INSERT INTO es.event_types (category, event_type, effect) VALUES ('Doc', 'page_rename', '[]')$$);
-- Invalid input: UPDATE to an effect with a missing member (42P17)
CALL pg_temp.expect_error($$UPDATE es.event_types SET effect = '[{"op": "remove"}]' WHERE category = 'doc' AND event_type = 'page_remove'$$);
-- Invalid input: UPDATE to a schema with a wrong type (42P17)
CALL pg_temp.expect_error($$UPDATE es.event_types SET schema = '{"type": "text"}' WHERE category = 'doc' AND event_type = 'page_remove'$$);
-- Invalid input: UPDATE to an invalid event type (42P17)
CALL pg_temp.expect_error($$UPDATE es.event_types SET event_type = '' WHERE category = 'doc' AND event_type = 'page_remove'$$);
-- a valid UPDATE is accepted
UPDATE es.event_types SET schema = '{"required": ["id"]}'
 WHERE category = 'doc' AND event_type = 'page_remove';
-- the same error as a client sees it
INSERT INTO es.event_types (category, event_type, effect)
VALUES ('doc', 'page_rename', '[{"op": "rename", "path": "/pages/{/id}"}]');
SELECT event_type, effect, schema FROM es.event_types
 WHERE category = 'doc' AND event_type IN ('page_remove', 'page_rename', 'numbered', 'noop')
 ORDER BY event_type;

--
-- Malformed effects: the shape of a step
--
-- Invalid input: the effect is an object, not an array (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '{"op": "remove", "path": "/a"}')$$);
-- Invalid input: the effect is a string (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '"remove /a"')$$);
-- Invalid input: the effect is JSON null (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', 'null')$$);
-- Invalid input: a step is a number (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "exists", "path": ""}, 1]')$$);
-- Invalid input: an unknown op (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "set", "path": "/a", "value": 1}]')$$);
-- Invalid input: an op in upper case is unknown (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "ADD", "path": "/a", "value": 1}]')$$);
-- Invalid input: op is not a string (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": 1, "path": "/a"}]')$$);
-- Invalid input: a step without op (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"path": "/a"}]')$$);
-- Invalid input: add without value (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "add", "path": "/a"}]')$$);
-- Invalid input: remove without path (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove"}]')$$);
-- Invalid input: move without from (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "move", "path": "/a"}]')$$);
-- Invalid input: remove with an extra member value (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/a", "value": 1}]')$$);
-- Invalid input: exists with an extra member from (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "exists", "path": "/a", "from": "/b"}]')$$);
-- Invalid input: add with a misspelt member (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "add", "path": "/a", "value": 1, "vaule": 2}]')$$);
-- Invalid input: path is not a string (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": ["a"]}]')$$);
-- Invalid input: merge of a value that is not an object (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "merge", "path": "", "value": [1]}]')$$);
-- Invalid input: remove_where with an empty where (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove_where", "path": "/a", "where": []}]')$$);
-- Invalid input: remove_where with a condition lacking equals (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove_where", "path": "/a", "where": [{"pointer": "/x"}]}]')$$);
-- Invalid input: remove_where with a condition pointer that is not a pointer (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove_where", "path": "/a", "where": [{"pointer": "x", "equals": 1}]}]')$$);
-- Invalid input: the third step lacks its value; the detail names it by
-- its index, 2 (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "exists", "path": ""}, {"op": "absent", "path": "/a"}, {"op": "replace", "path": "/a"}]')$$);

--
-- Malformed effects: paths
--
-- Invalid input: "~2" is not an escape (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/a~2b"}]')$$);
-- Invalid input: "~" at the end of the path (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/a~"}]')$$);
-- Invalid input: a path without its leading "/" (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "pages/p1"}]')$$);
-- Invalid input: a from without its leading "/" (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "copy", "from": "pages", "path": "/copy"}]')$$);
-- Invalid input: the empty template "{}" (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/pages/{}"}]')$$);
-- Invalid input: an unclosed template "{/id" (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/pages/{/id"}]')$$);
-- Invalid input: a "}" without "{" (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/pages/id}"}]')$$);
-- Invalid input: nested templates (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/pages/{/a{/b}}"}]')$$);
-- Invalid input: a template at the start of the path (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "{/id}"}]')$$);
-- Invalid input: a template right after "~" (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/pages/~{/id}"}]')$$);
-- Invalid input: a template that is not a pointer (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/pages/{id}"}]')$$);
-- Invalid input: a template with a bad escape (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove", "path": "/pages/{/i~d}"}]')$$);

--
-- Malformed effects: values and references
--
-- Invalid input: an unknown $event field (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "add", "path": "/at", "value": {"$event": "timestamp"}}]')$$);
-- Invalid input: $event that is not a string (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "add", "path": "/at", "value": {"$event": 1}}]')$$);
-- Invalid input: $data that is not a pointer, deep inside the value (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "add", "path": "/p", "value": {"a": [1, {"b": {"$data": "page"}}]}}]')$$);
-- Invalid input: $meta that is not a pointer (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "add", "path": "/p", "value": {"$meta": "/a~3"}}]')$$);
-- Invalid input: a reference with another member (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "add", "path": "/p", "value": {"$data": "/page", "default": {}}}]')$$);
-- Invalid input: a reference in a condition of remove_where (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[{"op": "remove_where", "path": "/pages", "where": [{"pointer": "/id", "equals": {"$event": "id"}}]}]')$$);
-- a value that only looks like a reference, under $literal, is fine
SELECT es_define('doc', 'literal', '[{"op": "add", "path": "/p", "value": {"$literal": {"$data": "page", "x": 1}}}]');

--
-- Malformed schemas
--
-- Invalid input: an unknown keyword (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"type": "object", "minimum": 1}')$$);
-- Invalid input: a misspelt keyword (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"type": "object", "requried": ["id"]}')$$);
-- Invalid input: an unknown keyword deep inside, with its location (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"properties": {"page": {"properties": {"tags": {"items": {"format": "uri"}}}}}}')$$);
-- Invalid input: an unknown type name (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"type": "str"}')$$);
-- Invalid input: type is a number (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"type": 1}')$$);
-- Invalid input: type is an empty array (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"type": []}')$$);
-- Invalid input: an unknown type name in a type array (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"type": ["string", "date"]}')$$);
-- Invalid input: required is a string (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"required": "id"}')$$);
-- Invalid input: additionalProperties is a schema (not in the subset) (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"additionalProperties": {"type": "string"}}')$$);
-- Invalid input: an empty enum (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"enum": []}')$$);
-- Invalid input: a negative minLength (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"minLength": -1}')$$);
-- Invalid input: a property schema that is not an object (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '{"properties": {"id": "string"}}')$$);
-- Invalid input: the schema is an array (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', '[{"type": "object"}]')$$);
-- Invalid input: the schema is the JSON-schema "true" (not in the subset) (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', 'bad', '[]', 'true')$$);

--
-- An effect that refers to data the schema rules out: with
-- "additionalProperties": false the schema lists every member the data can
-- have, so a template or a $data outside that list can never resolve
--
SELECT es_define('docx', 'item_add',
                 '[{"op": "merge", "path": "", "value": {"items": {}}},
                   {"op": "add", "path": "/items/{/id}", "value": {"$data": "/item"}}]',
                 '{"type": "object", "additionalProperties": false,
                   "properties": {"id": {"type": "string"}, "item": {"type": "object"}}}');
-- Invalid input: a template on a member the schema does not declare (42P17)
CALL pg_temp.expect_error($$SELECT es_define('docx', 'item_add', '[{"op": "add", "path": "/items/{/itemId}", "value": {"$data": "/item"}}]', '{"type": "object", "additionalProperties": false, "properties": {"id": {"type": "string"}, "item": {"type": "object"}}}')$$);
-- Invalid input: a $data on a member the schema does not declare (42P17)
CALL pg_temp.expect_error($$SELECT es_define('docx', 'item_add', '[{"op": "add", "path": "/items/{/id}", "value": {"$data": "/value"}}]', '{"type": "object", "additionalProperties": false, "properties": {"id": {"type": "string"}, "item": {"type": "object"}}}')$$);
-- Invalid input: a $data inside a condition of remove_where (42P17)
CALL pg_temp.expect_error($$SELECT es_define('docx', 'item_drop', '[{"op": "remove_where", "path": "/items", "where": [{"pointer": "/owner", "equals": {"$data": "/user"}}]}]', '{"type": "object", "additionalProperties": false, "properties": {"owner": {"type": "string"}}}')$$);
-- Invalid input: a nested member the nested schema does not declare (42P17)
CALL pg_temp.expect_error($$SELECT es_define('docx', 'item_move', '[{"op": "replace", "path": "/items/{/id}/pos", "value": {"$data": "/pos/z"}}]', '{"type": "object", "additionalProperties": false, "properties": {"id": {"type": "string"}, "pos": {"type": "object", "additionalProperties": false, "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}}}')$$);
-- the same effect is fine where the schema allows other members ...
SELECT es_define('docx', 'item_move',
                 '[{"op": "replace", "path": "/items/{/id}/pos", "value": {"$data": "/pos/z"}}]',
                 '{"type": "object", "additionalProperties": false,
                   "properties": {"id": {"type": "string"},
                                  "pos": {"type": "object", "properties": {"x": {"type": "number"}}}}}');
-- ... or where there is no schema
SELECT es_define('docx', 'item_tag',
                 '[{"op": "add", "path": "/items/{/itemId}/tag", "value": {"$data": "/tag"}}]');
-- and declared members are fine with additionalProperties false
SELECT es_define('docx', 'item_pos',
                 '[{"op": "replace", "path": "/items/{/id}/pos", "value": {"$data": "/pos/x"}}]',
                 '{"type": "object", "additionalProperties": false,
                   "properties": {"id": {"type": "string"},
                                  "pos": {"type": "object", "additionalProperties": false,
                                          "properties": {"x": {"type": "number"}}}}}');
-- the refused definitions left the registered ones as they were
SELECT event_type, effect->1->>'path' AS path
  FROM es.event_types WHERE category = 'docx' ORDER BY event_type;

--
-- Category and event type
--
-- Invalid input: a category in upper case (22023)
CALL pg_temp.expect_error($$SELECT es_define('Doc', 'page_add', '[]')$$);
-- Invalid input: a category with a dash: it would be a stream name (22023)
CALL pg_temp.expect_error($$SELECT es_define('doc-1', 'page_add', '[]')$$);
-- Invalid input: a category starting with a digit (22023)
CALL pg_temp.expect_error($$SELECT es_define('1doc', 'page_add', '[]')$$);
-- Invalid input: an empty category (22023)
CALL pg_temp.expect_error($$SELECT es_define('', 'page_add', '[]')$$);
-- Invalid input: a 51-byte category (22023)
CALL pg_temp.expect_error($$SELECT es_define(repeat('d', 51), 'page_add', '[]')$$);
-- Invalid input: an empty event type (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', '', '[]')$$);
-- Invalid input: a 201-byte event type (42P17)
CALL pg_temp.expect_error($$SELECT es_define('doc', repeat('t', 201), '[]')$$);
-- boundaries: a 50-byte category and a 200-byte event type
SELECT es_define(repeat('d', 50), repeat('t', 200), '[]');
SELECT octet_length(category) AS category_bytes, octet_length(event_type) AS type_bytes
  FROM es.event_types WHERE category = repeat('d', 50);
DELETE FROM es.event_types WHERE category = repeat('d', 50);

--
-- NULL arguments
--
-- the NOT NULL constraints of es.event_types refuse them (23502); the
-- detail, which shows the row with its timestamp, is left out
CREATE PROCEDURE pg_temp.expect_error_no_detail(query text)
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    BEGIN
        EXECUTE query;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE,
                                v_message = MESSAGE_TEXT;
        RAISE NOTICE '%: %', v_state, v_message;
        RETURN;
    END;
    RAISE NOTICE 'unexpected success: %', query;
END
$$;
-- Invalid input: NULL effect (23502)
CALL pg_temp.expect_error_no_detail($$SELECT es_define('doc', 'bad', NULL)$$);
-- Invalid input: NULL category (23502)
CALL pg_temp.expect_error_no_detail($$SELECT es_define(NULL, 'bad', '[]')$$);
-- Invalid input: NULL event type (23502)
CALL pg_temp.expect_error_no_detail($$SELECT es_define('doc', NULL, '[]')$$);
-- Invalid input: a plain INSERT without effect (23502)
CALL pg_temp.expect_error_no_detail($$INSERT INTO es.event_types (category, event_type) VALUES ('doc', 'bad')$$);
-- a NULL schema means no schema
SELECT es_define('doc', 'noschema', '[]', NULL);
SELECT event_type, schema IS NULL AS no_schema FROM es.event_types
 WHERE category = 'doc' AND event_type = 'noschema';

-- nothing refused above was stored
SELECT count(*) AS bad_rows FROM es.event_types
 WHERE event_type IN ('bad', 'page_rename')
    OR category IN ('Doc', 'doc-1', '1doc', '', repeat('d', 51));
SELECT category, string_agg(event_type, ', ' ORDER BY event_type) AS types
  FROM es.event_types WHERE category IN ('doc', 'docx')
 GROUP BY category ORDER BY category;

--
-- pg_dump: es.event_types and es.snapshots are configuration tables of the
-- extension, dumped in full (no condition)
--
SELECT c.oid::regclass AS config_table, cond.condition
  FROM pg_extension x,
       unnest(x.extconfig, x.extcondition) AS cond(reloid, condition),
       pg_class c
 WHERE x.extname = 'eventsourcing' AND c.oid = cond.reloid
 ORDER BY c.oid::regclass::text;
