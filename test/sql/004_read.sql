--
-- 004_read: es_version, es_read and es_read_all, including the cursor
-- semantics of es_read_all under concurrent transactions
--
\i test/sql/include/expect_error.sql

\i test/sql/include/wait_for_readers.sql

-- the events es_read_all returns after a position, as stream:sequence
CREATE FUNCTION pg_temp.read_all(after bigint, max_count int DEFAULT NULL,
                                 category text DEFAULT NULL)
RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(stream || ':' || sequence_number, ' ' ORDER BY n), '')
      FROM es_read_all(after, max_count, category) WITH ORDINALITY AS r(
               global_position, stream, category, sequence_number, event_id,
               event_type, data, metadata, user_id, username, created_at,
               transaction_id, db_role, n)
$$;

-- the position of the last event es_read_all returns now (0 if none)
CREATE FUNCTION pg_temp.read_all_end()
RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce((SELECT global_position
                       FROM es_read_all() WITH ORDINALITY AS r(
                                global_position, stream, category, sequence_number,
                                event_id, event_type, data, metadata, user_id,
                                username, created_at, transaction_id, db_role, n)
                      ORDER BY n DESC LIMIT 1), 0)
$$;

--
-- es_version
--
SELECT es_version('cart-1') AS unknown_stream;
SELECT sequence_number
  FROM es_append_batch('cart-1', '[
        {"event_type": "item_added", "data": {"sku": "A"}},
        {"event_type": "item_added", "data": {"sku": "B"}},
        {"event_type": "item_added", "data": {"sku": "C"}},
        {"event_type": "item_removed", "data": {"sku": "A"}},
        {"event_type": "checked_out", "data": {}}
       ]');
SELECT es_version('cart-1') AS version;
-- a stream whose name extends another's is another stream
SELECT es_version('cart-10') AS other_stream;
-- es_version sees the current transaction's appends
BEGIN;
SELECT sequence_number FROM es_append('cart-10', 'item_added', '{"sku": "Z"}');
SELECT es_version('cart-10') AS in_transaction;
ROLLBACK;
SELECT es_version('cart-10') AS after_rollback;

--
-- es_read
--
SELECT sequence_number, event_type, data FROM es_read('cart-1');
SELECT sequence_number FROM es_read('cart-1', 2);
SELECT sequence_number FROM es_read('cart-1', 2, 2);
SELECT sequence_number FROM es_read('cart-1', max_count => 1);
SELECT sequence_number FROM es_read('cart-1', after_sequence => 4, max_count => 10);
-- empty results: at the end, past the end, max_count 0, unknown stream
SELECT count(*) AS at_end FROM es_read('cart-1', 5);
SELECT count(*) AS past_end FROM es_read('cart-1', 100);
SELECT count(*) AS max_count_0 FROM es_read('cart-1', 0, 0);
SELECT count(*) AS unknown_stream FROM es_read('cart-99');
-- NULL after_sequence means 0, NULL max_count means no limit
SELECT count(*) AS all_events FROM es_read('cart-1', NULL, NULL);
-- the rows are the stored rows
SELECT count(*) AS same_rows
  FROM es_read('cart-1') r JOIN es.events e ON (r.*)::text = (e.*)::text;
-- a client paging through the stream by its last sequence number
CREATE FUNCTION pg_temp.page_stream(s text, page int)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    last bigint := 0;
    got bigint;
    result text := '';
    batch text;
BEGIN
    LOOP
        SELECT string_agg(sequence_number::text, ',' ORDER BY sequence_number),
               max(sequence_number)
          INTO batch, got
          FROM es_read(s, last, page);
        EXIT WHEN got IS NULL;
        result := result || '[' || batch || ']';
        last := got;
    END LOOP;
    RETURN result;
END
$$;
SELECT pg_temp.page_stream('cart-1', 2) AS pages;
-- es_read sees the current transaction's appends
BEGIN;
SELECT sequence_number FROM es_append('cart-1', 'refunded', '{}');
SELECT string_agg(sequence_number::text, ',') AS in_transaction FROM es_read('cart-1', 4);
ROLLBACK;

--
-- es_read_all
--
CALL pg_temp.wait_for_readers();
SELECT pg_temp.read_all_end() AS start \gset
-- the batch of cart-1 above precedes the start
SELECT pg_temp.read_all(:start) AS nothing_new;

SELECT sequence_number FROM es_append('cart-2', 'item_added', '{"sku": "D"}');
SELECT sequence_number FROM es_append('order-1', 'order_placed', '{"cart": "cart-2"}');
SELECT sequence_number FROM es_append('cart-2', 'checked_out', '{}');
BEGIN;
SELECT sequence_number FROM es_append('order-1', 'order_paid', '{}');
SELECT sequence_number FROM es_append('cart-3', 'item_added', '{"sku": "E"}');
SELECT sequence_number FROM es_append('order-1', 'order_shipped', '{}');
-- the transaction's own events are not returned before it ends
SELECT pg_temp.read_all(:start) AS before_commit;
COMMIT;
CALL pg_temp.wait_for_readers();
SELECT pg_temp.read_all(:start) AS after_commit;
-- with max_count
SELECT pg_temp.read_all(:start, 2) AS first_two;
SELECT pg_temp.read_all(:start, 0) AS none;
-- one category; the position passed may be an event of any category
SELECT pg_temp.read_all(:start, NULL, 'cart') AS carts;
SELECT pg_temp.read_all(:start, 1, 'order') AS first_order;
SELECT pg_temp.read_all(:start, NULL, 'nothing') AS unknown_category;
SELECT global_position AS order_1_1 FROM es_read('order-1') WHERE sequence_number = 1 \gset
SELECT pg_temp.read_all(:order_1_1, NULL, 'cart') AS carts_after_order_1_1;
SELECT pg_temp.read_all(:order_1_1) AS all_after_order_1_1;
-- NULL after_position means 0
SELECT count(*) = (SELECT count(*) FROM es_read_all(0)) AS null_is_zero
  FROM es_read_all(NULL);
-- es_read_all(0) returns every committed event, each once
SELECT count(*) = (SELECT count(*) FROM es.events) AS every_event,
       count(DISTINCT global_position) = count(*) AS each_once
  FROM es_read_all(0);

-- a reader that pages with max_count, passing back the last position it
-- got, sees every event once, in the order of an unbounded read
CREATE FUNCTION pg_temp.page_all(after bigint, page int, cat text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    pos bigint := after;
    rec record;
    n int;
    result text := '';
BEGIN
    LOOP
        n := 0;
        FOR rec IN SELECT * FROM es_read_all(pos, page, cat) LOOP
            result := result || ' ' || rec.stream || ':' || rec.sequence_number;
            pos := rec.global_position;
            n := n + 1;
        END LOOP;
        EXIT WHEN n < page;
        result := result || ' |';
    END LOOP;
    RETURN ltrim(result);
END
$$;
SELECT pg_temp.page_all(:start, 2) AS pages_of_2;
SELECT replace(pg_temp.page_all(:start, 1), ' |', '') = pg_temp.read_all(:start) AS same_as_one_read;
SELECT pg_temp.page_all(:start, 1, 'cart') AS cart_pages_of_1;

-- per stream, es_read_all returns events in sequence order
SELECT bool_and(ok) AS sequence_order
  FROM (SELECT sequence_number > lag(sequence_number, 1, 0::bigint)
                   OVER (PARTITION BY stream ORDER BY n) AS ok
          FROM es_read_all() WITH ORDINALITY AS r(
                   global_position, stream, category, sequence_number, event_id,
                   event_type, data, metadata, user_id, username, created_at,
                   transaction_id, db_role, n)) s;

--
-- es_read_all never skips an event committed late with an earlier position
-- in its transaction order.  A second session (dblink) keeps a transaction
-- open; its events and everything that began writing after it are held
-- back until it ends, then returned in transaction order.
--
CREATE EXTENSION dblink;
SELECT dblink_connect('other',
           format('dbname=%L port=%s user=%L', current_database(),
                  current_setting('port'), current_user)
           || coalesce(' host=' || nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), ''))
       AS connected;

CALL pg_temp.wait_for_readers();
SELECT pg_temp.read_all_end() AS start \gset

-- the other session takes its transaction id first ...
SELECT dblink_exec('other', 'BEGIN');
SELECT x IS NOT NULL AS other_has_xid
  FROM dblink('other', 'SELECT pg_current_xact_id()') AS t(x xid8);
-- ... this session appends and commits: a later transaction id, an
-- earlier global position
SELECT sequence_number FROM es_append('late-b', 'b1', '{}');
-- ... the other session appends after it: a later global position
SELECT * FROM dblink('other',
           $$SELECT sequence_number FROM es_append('late-a', 'a1', '{}')$$) AS t(sequence_number bigint);
-- the other transaction's row is not visible yet
SELECT count(*) AS late_a_visible FROM es.events WHERE stream = 'late-a';
-- es_read returns the committed event, es_read_all holds it back
SELECT count(*) AS es_read_b FROM es_read('late-b');
SELECT pg_temp.read_all(:start) AS held_back;
-- Invalid input: a position es_read_all has not returned (late-b's, taken
-- from es_read while an older writing transaction is still open)
DO $$
BEGIN
    PERFORM * FROM es_read_all((SELECT global_position FROM es_read('late-b')));
    RAISE NOTICE 'unexpected success';
EXCEPTION WHEN invalid_parameter_value THEN
    RAISE NOTICE '22023: %', regexp_replace(SQLERRM, '[0-9]+', 'N');
END
$$;
SELECT dblink_exec('other', 'COMMIT');
CALL pg_temp.wait_for_readers();
SELECT (SELECT global_position FROM es_read('late-b')) <
       (SELECT global_position FROM es_read('late-a')) AS b_has_earlier_position;
-- transaction order: late-a (older transaction) before late-b
SELECT pg_temp.read_all(:start) AS after_commit;
-- the position of late-b's event is lower than late-a's, yet continuing
-- after late-a returns late-b: nothing is skipped
SELECT global_position AS late_a_pos FROM es_read('late-a') \gset
SELECT pg_temp.read_all(:late_a_pos) AS after_late_a;
SELECT global_position AS late_b_pos FROM es_read('late-b') \gset
SELECT pg_temp.read_all(:late_b_pos) AS after_late_b;

-- a rolled-back transaction in the other session: nothing to read, no gap
CALL pg_temp.wait_for_readers();
SELECT pg_temp.read_all_end() AS start \gset
SELECT dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other',
           $$SELECT sequence_number FROM es_append('late-a', 'a2', '{}')$$) AS t(sequence_number bigint);
SELECT sequence_number FROM es_append('late-b', 'b2', '{}');
SELECT pg_temp.read_all(:start) AS held_back;
SELECT dblink_exec('other', 'ROLLBACK');
CALL pg_temp.wait_for_readers();
SELECT pg_temp.read_all(:start) AS after_rollback;
SELECT sequence_number FROM es_append('late-a', 'a2', '{}');

-- Appends that would break per-stream order in es_read_all are refused:
-- a transaction that took its id before a younger transaction appended to
-- the stream cannot append after it
SELECT dblink_exec('other', 'BEGIN');
SELECT x IS NOT NULL AS other_has_xid
  FROM dblink('other', 'SELECT pg_current_xact_id()') AS t(x xid8);
SELECT sequence_number FROM es_append('race-1', 'first', '{}');
-- Invalid input: the older transaction appends to the same stream
CALL pg_temp.expect_error($q$SELECT * FROM dblink('other', $$SELECT sequence_number FROM es_append('race-1', 'second', '{}')$$) AS t(n bigint)$q$);
SELECT dblink_exec('other', 'ROLLBACK');
-- a retry in a new transaction succeeds
SELECT * FROM dblink('other',
           $$SELECT sequence_number FROM es_append('race-1', 'second', '{}')$$) AS t(sequence_number bigint);

-- under REPEATABLE READ, an append whose snapshot predates the stream's
-- last append is a serialization failure
SELECT dblink_exec('other', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('other', $$SELECT es_version('race-1')$$) AS t(version bigint);
SELECT sequence_number FROM es_append('race-1', 'third', '{}');
-- Invalid input: the stale snapshot appends to the stream
CALL pg_temp.expect_error($q$SELECT * FROM dblink('other', $$SELECT sequence_number FROM es_append('race-1', 'fourth', '{}')$$) AS t(n bigint)$q$);
SELECT dblink_exec('other', 'ROLLBACK');
-- the same on a stream created after the snapshot was taken
SELECT dblink_exec('other', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('other', $$SELECT es_version('race-2')$$) AS t(version bigint);
SELECT sequence_number FROM es_append('race-2', 'first', '{}');
-- Invalid input: the stale snapshot creates the stream again
CALL pg_temp.expect_error($q$SELECT * FROM dblink('other', $$SELECT sequence_number FROM es_append('race-2', 'second', '{}')$$) AS t(n bigint)$q$);
SELECT dblink_exec('other', 'ROLLBACK');
SELECT stream, string_agg(sequence_number || ':' || event_type, ' ' ORDER BY sequence_number) AS events
  FROM es.events WHERE stream IN ('race-1', 'race-2') GROUP BY stream ORDER BY stream;

SELECT dblink_disconnect('other');
DROP EXTENSION dblink;

--
-- Invalid inputs of the readers
--
-- Invalid input: es_version of NULL
CALL pg_temp.expect_error($$SELECT es_version(NULL)$$);
-- Invalid input: es_version of an invalid stream name
CALL pg_temp.expect_error($$SELECT es_version('cart')$$);
-- Invalid input: es_read of NULL
CALL pg_temp.expect_error($$SELECT * FROM es_read(NULL)$$);
-- Invalid input: es_read of an invalid stream name
CALL pg_temp.expect_error($$SELECT * FROM es_read('Cart-1')$$);
-- Invalid input: negative after_sequence
CALL pg_temp.expect_error($$SELECT * FROM es_read('cart-1', -1)$$);
-- Invalid input: negative max_count
CALL pg_temp.expect_error($$SELECT * FROM es_read('cart-1', 0, -1)$$);
-- Invalid input: negative after_position
CALL pg_temp.expect_error($$SELECT * FROM es_read_all(-1)$$);
-- Invalid input: es_read_all with a negative max_count
CALL pg_temp.expect_error($$SELECT * FROM es_read_all(0, -5)$$);
-- Invalid input: a position where no event is
CALL pg_temp.expect_error($$SELECT * FROM es_read_all(999999999999)$$);
-- Invalid input: an invalid category
CALL pg_temp.expect_error($$SELECT * FROM es_read_all(0, NULL, 'Cart')$$);
-- Invalid input: an empty category
CALL pg_temp.expect_error($$SELECT * FROM es_read_all(0, NULL, '')$$);
-- Invalid input: a stream name as category
CALL pg_temp.expect_error($$SELECT * FROM es_read_all(0, NULL, 'cart-1')$$);
