/* sql/eventsourcing--1.2--1.3.sql */

\echo Use "ALTER EXTENSION eventsourcing UPDATE TO '1.3'" to load this file. \quit

/*
 * 1.3: eventsourcing.notify = worker.  A transaction that appends in worker
 * mode writes one row here just before it commits; the database's notifier
 * (a background worker) deletes the committed rows and NOTIFYs their events
 * in one transaction.  The rows are transient: no dump keeps them (a
 * restored database must not announce old events again), a heap without
 * index or trigger (appends insert into the heap directly, without a
 * privilege check; the notifier reads the whole table, which stays small).
 */
CREATE TABLE es.notify_queue (
    transaction_id  xid8 NOT NULL,
    positions       bigint[] NOT NULL,
    queued_at       timestamptz NOT NULL
) USING heap;
REVOKE ALL ON es.notify_queue FROM PUBLIC;
-- no key: a publication FOR ALL TABLES must still let the notifier delete
ALTER TABLE es.notify_queue REPLICA IDENTITY FULL;

COMMENT ON TABLE es.notify_queue
    IS 'events committed in eventsourcing.notify = worker mode and not yet announced, one row per transaction';

CREATE FUNCTION @extschema@.es_notify_worker(
    OUT worker_pid integer, OUT worker_state text,
    OUT worker_started_at timestamptz, OUT last_position bigint,
    OUT events_sent bigint, OUT batches bigint, OUT last_batch_at timestamptz,
    OUT last_error text, OUT last_error_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'es_notify_worker'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.es_notify_worker()
    IS 'the current database''s notifier (eventsourcing.notify = worker), from shared memory';

/*
 * What a subscriber or an operator asks: is the notifier running, how far
 * behind is it, what went wrong last.  The queue columns are read with the
 * privileges of the view's owner.
 */
CREATE VIEW es.notify_status AS
SELECT pg_catalog.current_setting('eventsourcing.notify') AS mode,
       w.worker_pid, w.worker_state, w.worker_started_at,
       q.queued_transactions, q.lag_events,
       pg_catalog.now() OPERATOR(pg_catalog.-) q.oldest AS lag,
       w.last_position, w.events_sent, w.batches, w.last_batch_at,
       w.last_error, w.last_error_at
  FROM @extschema@.es_notify_worker() w,
       (SELECT pg_catalog.count(*) AS queued_transactions,
               COALESCE(pg_catalog.sum(pg_catalog.cardinality(positions)), 0)::bigint AS lag_events,
               pg_catalog.min(queued_at) AS oldest
          FROM es.notify_queue) q;

GRANT SELECT ON es.notify_status TO PUBLIC;

COMMENT ON VIEW es.notify_status
    IS 'the notifier of the current database: state, lag in events and time, counters, last error';

/*
 * The editor's WebSocket protocol, answered by the database: a relay passes
 * every client message here and sends the reply (if not NULL) back to its
 * sender.  Errors the client caused are replies; the others are raised.
 */
CREATE FUNCTION @extschema@.es_handle(stream text, message jsonb,
                                      user_id text DEFAULT NULL,
                                      username text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'es_handle'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.es_handle(text, jsonb, text, text)
    IS 'answer one message of the editor protocol (action, sync, time_travel): the reply to the sender, or NULL';
