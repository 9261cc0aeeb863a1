--
-- include/expect_error.sql: included by the regression files (\i, from the top of the repository, where make runs pg_regress).
--
-- expect_error(query): run a statement that must fail and show its SQLSTATE,
-- message, detail, hint and, for a batch, the failing element; stable output
-- (no line numbers, no process ids)
CREATE PROCEDURE pg_temp.expect_error(query text)
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
    v_detail text;
    v_hint text;
    v_context text;
BEGIN
    BEGIN
        EXECUTE query;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE,
                                v_message = MESSAGE_TEXT,
                                v_detail = PG_EXCEPTION_DETAIL,
                                v_hint = PG_EXCEPTION_HINT,
                                v_context = PG_EXCEPTION_CONTEXT;
        RAISE NOTICE '%', v_state || ': ' || v_message
            || coalesce(E'\n  detail: ' || nullif(v_detail, ''), '')
            || coalesce(E'\n  hint: ' || nullif(v_hint, ''), '')
            || coalesce(E'\n  context: '
                        || substring(v_context from 'event [0-9]+ of the batch'), '');
        RETURN;
    END;
    RAISE NOTICE 'unexpected success: %', query;
END
$$;
