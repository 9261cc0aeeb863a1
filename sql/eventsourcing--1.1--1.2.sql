/* sql/eventsourcing--1.1--1.2.sql */

\echo Use "ALTER EXTENSION eventsourcing UPDATE TO '1.2'" to load this file. \quit

/*
 * 1.2: history.  Undo and redo, the audit trail, compaction, retention,
 * stream deletion and verification.
 */

/*
 * The database role that appended each event (current_user in the append
 * trigger).  Events appended before 1.2 have none.
 */
ALTER TABLE es.events ADD COLUMN db_role text;

/*
 * A deleted stream keeps its row, so that its sequence numbers are never
 * reused: appending to it is refused.
 */
ALTER TABLE es.streams ADD COLUMN deleted_at timestamptz;

/*
 * Undo and redo events name, in data->'action_sequence', the event they
 * undo or redo the effect of; the latest one says whether that action is
 * currently undone.
 */
CREATE INDEX events_undo_action_idx
    ON es.events (stream, ((data OPERATOR(pg_catalog.->>) 'action_sequence')::bigint), sequence_number)
    WHERE event_type IN ('undo', 'redo');

/*
 * The audit record of every removal of events: compaction and retention
 * (kind 'compact', 'retain'), which keep the state after last_sequence as
 * the stream's new starting point, and stream deletion ('delete').  Rows
 * are written by es_compact, es_retain and es_delete_stream only.
 */
CREATE TABLE es.removals (
    stream            text NOT NULL,
    category          text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('compact', 'retain', 'delete')),
    first_sequence    bigint NOT NULL,
    last_sequence     bigint NOT NULL,
    events_removed    bigint NOT NULL,
    first_position    bigint,
    last_position     bigint,
    first_created_at  timestamptz,
    last_created_at   timestamptz,
    definitions_hash  bigint,
    state             jsonb,
    removed_by        text NOT NULL,
    removed_at        timestamptz NOT NULL,
    transaction_id    xid8 NOT NULL,
    PRIMARY KEY (stream, transaction_id, kind)
);

CREATE INDEX removals_stream_sequence_idx ON es.removals (stream, last_sequence);

COMMENT ON TABLE es.removals IS 'audit record of removed events: compaction, retention, stream deletion';

SELECT pg_catalog.pg_extension_config_dump('es.removals', '');

/*
 * Undo and redo
 */
CREATE FUNCTION @extschema@.es_undo(
    stream text,
    target_sequence bigint,
    user_id text DEFAULT NULL,
    username text DEFAULT NULL)
RETURNS es.events
AS 'MODULE_PATHNAME', 'es_undo'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_undo(text, bigint, text, text)
    IS 'append an undo event that reverts the effect of an event';

CREATE FUNCTION @extschema@.es_redo(
    stream text,
    target_sequence bigint,
    user_id text DEFAULT NULL,
    username text DEFAULT NULL)
RETURNS es.events
AS 'MODULE_PATHNAME', 'es_redo'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_redo(text, bigint, text, text)
    IS 'append a redo event that applies again what an undo event reverted';

CREATE FUNCTION @extschema@.es_undo_last(
    stream text,
    user_id text,
    username text DEFAULT NULL)
RETURNS es.events
AS 'MODULE_PATHNAME', 'es_undo_last'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_undo_last(text, text, text)
    IS 'undo the most recent action of a user in a stream that is not undone';

CREATE FUNCTION @extschema@.es_redo_last(
    stream text,
    user_id text,
    username text DEFAULT NULL)
RETURNS es.events
AS 'MODULE_PATHNAME', 'es_redo_last'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_redo_last(text, text, text)
    IS 'redo the most recent undo of a user in a stream, unless the user acted since';

/*
 * Removal of events: for the owner of the extension and the roles it
 * grants EXECUTE to.
 */
CREATE FUNCTION @extschema@.es_compact(stream text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_compact'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_compact(text)
    IS 'remove the events of a stream up to its latest snapshot; returns how many';

CREATE FUNCTION @extschema@.es_retain(category text, keep interval)
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_retain'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_retain(text, interval)
    IS 'remove the events of a category older than keep, keeping the state they made; returns how many';

CREATE FUNCTION @extschema@.es_delete_stream(stream text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_delete_stream'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_delete_stream(text)
    IS 'delete a stream: its events, snapshots and state; later appends are refused';

REVOKE EXECUTE ON FUNCTION @extschema@.es_compact(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.es_retain(text, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.es_delete_stream(text) FROM PUBLIC;

/*
 * Verification
 */
CREATE FUNCTION @extschema@.es_verify(stream text DEFAULT NULL)
RETURNS TABLE (stream text, problem text)
AS 'MODULE_PATHNAME', 'es_verify'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_verify(text)
    IS 'every broken invariant of a stream (NULL: of all streams), one row each';

/*
 * The audit trail: every event with who appended it, and whether its
 * effect is currently undone (by which undo event).
 */
CREATE VIEW es.audit AS
SELECT e.global_position,
       e.stream,
       e.category,
       e.sequence_number,
       e.event_type,
       e.data,
       e.metadata,
       e.user_id,
       e.username,
       e.db_role,
       e.created_at,
       e.transaction_id,
       e.event_id,
       CASE WHEN e.event_type IN ('undo', 'redo')
            THEN (e.data OPERATOR(pg_catalog.->>) 'target_sequence')::bigint
       END AS target_sequence,
       last_change.sequence_number AS undone_by,
       last_change.sequence_number IS NOT NULL AS undone
  FROM es.events e
  LEFT JOIN LATERAL (
       SELECT u.sequence_number
         FROM (SELECT c.sequence_number, c.event_type
                 FROM es.events c
                WHERE c.stream OPERATOR(pg_catalog.=) e.stream
                  AND c.event_type IN ('undo', 'redo')
                  AND (c.data OPERATOR(pg_catalog.->>) 'action_sequence')::bigint
                      OPERATOR(pg_catalog.=) CASE WHEN e.event_type OPERATOR(pg_catalog.=) 'redo'
                                                  THEN (e.data OPERATOR(pg_catalog.->>) 'action_sequence')::bigint
                                                  ELSE e.sequence_number END
                  AND c.sequence_number OPERATOR(pg_catalog.>) e.sequence_number
                ORDER BY c.sequence_number DESC
                LIMIT 1) u
        WHERE u.event_type OPERATOR(pg_catalog.=) 'undo'
          AND e.event_type OPERATOR(pg_catalog.<>) 'undo'
       ) last_change ON true;

COMMENT ON VIEW es.audit IS 'who appended what and when, and whether it is currently undone';
