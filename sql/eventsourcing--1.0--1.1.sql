/* sql/eventsourcing--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION eventsourcing UPDATE TO '1.1'" to load this file. \quit

/*
 * 1.1: the state engine.  Event definitions per category, validation at
 * append, replay, snapshots.
 */

/*
 * The registry of event definitions.  A category with at least one row here
 * is validated: an event of a type without a row is refused, and every event
 * must pass its schema and its effect.  Rows are checked by a trigger, so
 * es_define and a plain INSERT are held to the same rules.
 */
CREATE TABLE es.event_types (
    category    text NOT NULL,
    event_type  text NOT NULL,
    effect      jsonb NOT NULL,
    schema      jsonb,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (category, event_type)
);

COMMENT ON TABLE es.event_types IS 'event definitions: the effect and schema of each event type of a category';

/*
 * Snapshots: the state of a stream after its event sequence_number.  They
 * are a cache, so they may be deleted at will.  definitions_hash identifies
 * the definitions of the category the state was folded with; a snapshot
 * taken under other definitions is ignored.
 */
CREATE TABLE es.snapshots (
    stream           text NOT NULL,
    sequence_number  bigint NOT NULL CHECK (sequence_number > 0),
    definitions_hash bigint NOT NULL,
    state            jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (stream, sequence_number)
);

COMMENT ON TABLE es.snapshots IS 'cached states of streams (may be deleted at will)';

SELECT pg_catalog.pg_extension_config_dump('es.event_types', '');
SELECT pg_catalog.pg_extension_config_dump('es.snapshots', '');

CREATE FUNCTION es.event_types_check_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'es_event_types_check_trigger'
LANGUAGE C;

CREATE FUNCTION es.event_types_changed_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'es_event_types_changed_trigger'
LANGUAGE C;

/* a malformed effect or schema is refused when it is stored */
CREATE TRIGGER check_definition
    BEFORE INSERT OR UPDATE ON es.event_types
    FOR EACH ROW EXECUTE FUNCTION es.event_types_check_trigger();

/* every session drops the definitions and states it cached */
CREATE TRIGGER definitions_changed
    AFTER INSERT OR UPDATE OR DELETE ON es.event_types
    FOR EACH STATEMENT EXECUTE FUNCTION es.event_types_changed_trigger();

CREATE TRIGGER definitions_truncated
    AFTER TRUNCATE ON es.event_types
    FOR EACH STATEMENT EXECUTE FUNCTION es.event_types_changed_trigger();

CREATE FUNCTION @extschema@.es_define(
    category text,
    event_type text,
    effect jsonb,
    schema jsonb DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO es.event_types AS t (category, event_type, effect, schema)
    VALUES (category, event_type, effect, schema)
    ON CONFLICT (category, event_type) DO UPDATE
        SET effect = excluded.effect,
            schema = excluded.schema,
            updated_at = pg_catalog.now()
$$;

COMMENT ON FUNCTION @extschema@.es_define(text, text, jsonb, jsonb)
    IS 'register or replace the definition (effect and schema) of an event type';

CREATE FUNCTION @extschema@.es_replay(
    stream text,
    at_sequence bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'es_replay'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL RESTRICTED;

COMMENT ON FUNCTION @extschema@.es_replay(text, bigint)
    IS 'state of a stream after an event (default: its last event)';

CREATE FUNCTION @extschema@.es_replay_at(stream text, at timestamptz)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'es_replay_at'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL RESTRICTED;

COMMENT ON FUNCTION @extschema@.es_replay_at(text, timestamptz)
    IS 'state of a stream after the last event appended at or before a time';

CREATE FUNCTION @extschema@.es_replay_all(category text)
RETURNS TABLE (stream text, version bigint, state jsonb)
AS 'MODULE_PATHNAME', 'es_replay_all'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL RESTRICTED;

COMMENT ON FUNCTION @extschema@.es_replay_all(text)
    IS 'current state of every stream of a category';

CREATE FUNCTION @extschema@.es_snapshot(stream text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_snapshot'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_snapshot(text)
    IS 'store the current state of a stream as a snapshot; returns its sequence number';
