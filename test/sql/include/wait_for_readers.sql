--
-- include/wait_for_readers.sql: included by the regression files (\i, from the top of the repository, where make runs pg_regress).
--
-- wait_for_readers(): wait until every transaction that wrote events so far
-- has ended, so that es_read_all (which returns only transactions older than
-- the snapshot's xmin) sees them whatever else the cluster runs
-- (autovacuum, ...)
CREATE PROCEDURE pg_temp.wait_for_readers()
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 3000 LOOP
        IF pg_snapshot_xmin(pg_current_snapshot())
           > coalesce((SELECT max(transaction_id) FROM es.events), '0') THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RAISE NOTICE 'events still held back after 30 s';
END
$$;
