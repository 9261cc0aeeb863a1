/* sql/eventsourcing--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION eventsourcing" to load this file. \quit

/*
 * Storage lives in the fixed schema "es"; the SQL API goes to the schema the
 * extension is created in (by default the first schema of search_path).
 */
CREATE SCHEMA es;

COMMENT ON SCHEMA es IS 'event store tables of the eventsourcing extension';

/*
 * One row per stream.  "version" is the sequence number of the stream's last
 * event.  Rows are created and advanced only by the append trigger, under the
 * stream's append lock.
 */
CREATE TABLE es.streams (
    stream      text NOT NULL PRIMARY KEY,
    category    text NOT NULL,
    version     bigint NOT NULL CHECK (version >= 0),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

COMMENT ON TABLE es.streams IS 'one row per stream: its current version';

/*
 * Global positions are drawn from this sequence by the append trigger after
 * it holds the stream's lock, so that within one stream global order and
 * sequence order agree.  (An identity default would be evaluated before the
 * trigger runs, outside the lock.)
 */
CREATE SEQUENCE es.events_global_position_seq AS bigint;

/*
 * The event log.  global_position, category, created_at and transaction_id
 * have no defaults on purpose: the BEFORE INSERT trigger assigns them, and a
 * value supplied for them is refused (or, for the owner restoring a dump,
 * taken as is).
 */
CREATE TABLE es.events (
    global_position bigint NOT NULL,
    stream          text NOT NULL,
    category        text NOT NULL,
    sequence_number bigint NOT NULL CHECK (sequence_number > 0),
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb,
    user_id         text,
    username        text,
    created_at      timestamptz NOT NULL,
    transaction_id  xid8 NOT NULL,
    PRIMARY KEY (stream, sequence_number),
    UNIQUE (event_id),
    UNIQUE (global_position)
);

ALTER SEQUENCE es.events_global_position_seq
    OWNED BY es.events.global_position;

/* es_read_all: commit-safe global order, all categories or one */
CREATE INDEX events_transaction_position_idx
    ON es.events (transaction_id, global_position);
CREATE INDEX events_category_transaction_position_idx
    ON es.events (category, transaction_id, global_position);
/* audit and time queries */
CREATE INDEX events_created_at_idx
    ON es.events (created_at);

COMMENT ON TABLE es.events IS 'append-only event log';

/* pg_dump keeps the data of all three */
SELECT pg_catalog.pg_extension_config_dump('es.streams', '');
SELECT pg_catalog.pg_extension_config_dump('es.events', '');
SELECT pg_catalog.pg_extension_config_dump('es.events_global_position_seq', '');

/*
 * Enforcement triggers.  The append trigger is the single append path: it
 * serves es_append and plain INSERT alike.
 */
CREATE FUNCTION es.events_append_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'es_events_append_trigger'
LANGUAGE C;

CREATE FUNCTION es.events_append_only_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'es_events_append_only_trigger'
LANGUAGE C;

CREATE TRIGGER append
    BEFORE INSERT ON es.events
    FOR EACH ROW EXECUTE FUNCTION es.events_append_trigger();

CREATE TRIGGER append_only
    BEFORE UPDATE OR DELETE ON es.events
    FOR EACH STATEMENT EXECUTE FUNCTION es.events_append_only_trigger();

CREATE TRIGGER append_only_truncate
    BEFORE TRUNCATE ON es.events
    FOR EACH STATEMENT EXECUTE FUNCTION es.events_append_only_trigger();

/*
 * SQL API
 */
CREATE FUNCTION @extschema@.es_append(
    stream text,
    event_type text,
    data jsonb,
    metadata jsonb DEFAULT NULL,
    expected_version bigint DEFAULT NULL,
    event_id uuid DEFAULT NULL,
    user_id text DEFAULT NULL,
    username text DEFAULT NULL)
RETURNS es.events
AS 'MODULE_PATHNAME', 'es_append'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_append(text, text, jsonb, jsonb, bigint, uuid, text, text)
    IS 'append one event to a stream';

CREATE FUNCTION @extschema@.es_append_batch(
    stream text,
    events jsonb,
    expected_version bigint DEFAULT NULL)
RETURNS SETOF es.events
AS 'MODULE_PATHNAME', 'es_append_batch'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_append_batch(text, jsonb, bigint)
    IS 'append a JSON array of events to a stream, atomically';

CREATE FUNCTION @extschema@.es_version(stream text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_version'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL RESTRICTED;

COMMENT ON FUNCTION @extschema@.es_version(text)
    IS 'current version of a stream (0 if it has no events)';

CREATE FUNCTION @extschema@.es_read(
    stream text,
    after_sequence bigint DEFAULT 0,
    max_count integer DEFAULT NULL)
RETURNS SETOF es.events
AS 'MODULE_PATHNAME', 'es_read'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL RESTRICTED;

COMMENT ON FUNCTION @extschema@.es_read(text, bigint, integer)
    IS 'events of one stream after a sequence number, in sequence order';

CREATE FUNCTION @extschema@.es_read_all(
    after_position bigint DEFAULT 0,
    max_count integer DEFAULT NULL,
    category text DEFAULT NULL)
RETURNS SETOF es.events
AS 'MODULE_PATHNAME', 'es_read_all'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL RESTRICTED;

COMMENT ON FUNCTION @extschema@.es_read_all(bigint, integer, text)
    IS 'events of all streams after a global position, in commit-safe order';

CREATE FUNCTION @extschema@.es_sync(stream text, last_sequence bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'es_sync'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL RESTRICTED;

COMMENT ON FUNCTION @extschema@.es_sync(text, bigint)
    IS 'catch-up message {"type":"sync_batch",...} for a client of a stream';
