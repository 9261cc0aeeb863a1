--
-- 007_errors: every invalid input of the append functions, with its
-- SQLSTATE, message, detail and hint.  Streams of category "err" must stay
-- empty.
--
\i test/sql/include/expect_error.sql

--
-- Stream names
--
-- Invalid input: NULL stream
CALL pg_temp.expect_error($$SELECT es_append(NULL, 'a', '{}')$$);
-- Invalid input: empty stream name
CALL pg_temp.expect_error($$SELECT es_append('', 'a', '{}')$$);
-- Invalid input: 201-byte stream name
CALL pg_temp.expect_error($$SELECT es_append('err-' || repeat('x', 197), 'a', '{}')$$);
-- Invalid input: 201-byte stream name of 106 characters
CALL pg_temp.expect_error($$SELECT es_append('err-' || repeat('é', 98) || 'x', 'a', '{}')$$);
-- Invalid input: no dash
CALL pg_temp.expect_error($$SELECT es_append('err', 'a', '{}')$$);
-- Invalid input: empty category
CALL pg_temp.expect_error($$SELECT es_append('-42', 'a', '{}')$$);
-- Invalid input: empty id
CALL pg_temp.expect_error($$SELECT es_append('err-', 'a', '{}')$$);
-- Invalid input: category with upper case
CALL pg_temp.expect_error($$SELECT es_append('Err-1', 'a', '{}')$$);
-- Invalid input: category starting with a digit
CALL pg_temp.expect_error($$SELECT es_append('1err-1', 'a', '{}')$$);
-- Invalid input: category starting with an underscore
CALL pg_temp.expect_error($$SELECT es_append('_err-1', 'a', '{}')$$);
-- Invalid input: category with a space
CALL pg_temp.expect_error($$SELECT es_append('e rr-1', 'a', '{}')$$);
-- Invalid input: category with a dot
CALL pg_temp.expect_error($$SELECT es_append('e.rr-1', 'a', '{}')$$);
-- Invalid input: category with a non-ASCII letter
CALL pg_temp.expect_error($$SELECT es_append('café-1', 'a', '{}')$$);
-- Invalid input: 51-byte category
CALL pg_temp.expect_error($$SELECT es_append(repeat('e', 51) || '-1', 'a', '{}')$$);
-- the same error as a client sees it
SELECT es_append('Playbook-42', 'module_add', '{}');

--
-- Event type, user id, user name
--
-- Invalid input: NULL event type
CALL pg_temp.expect_error($$SELECT es_append('err-1', NULL, '{}')$$);
-- Invalid input: empty event type
CALL pg_temp.expect_error($$SELECT es_append('err-1', '', '{}')$$);
-- Invalid input: 201-byte event type
CALL pg_temp.expect_error($$SELECT es_append('err-1', repeat('t', 201), '{}')$$);
-- Invalid input: empty user id
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', user_id => '')$$);
-- Invalid input: 201-byte user id
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', user_id => repeat('u', 201))$$);
-- Invalid input: empty user name
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', username => '')$$);
-- Invalid input: 201-byte user name (101 characters)
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', username => repeat('ü', 100) || 'x')$$);

--
-- Data and metadata
--
-- Invalid input: NULL data
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', NULL)$$);
-- Invalid input: data is an array
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '[{"moduleId": "m1"}]')$$);
-- Invalid input: data is an empty array
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '[]')$$);
-- Invalid input: data is a string
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '"m1"')$$);
-- Invalid input: data is a number
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '42')$$);
-- Invalid input: data is a boolean
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', 'true')$$);
-- Invalid input: data is JSON null
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', 'null')$$);
-- Invalid input: metadata is an array
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', metadata => '[]')$$);
-- Invalid input: metadata is a string
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', metadata => '"x"')$$);
-- Invalid input: metadata is JSON null
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', metadata => 'null')$$);
-- Invalid input: data that is not JSON at all (rejected by jsonb itself)
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{"moduleId": }')$$);

--
-- Size limit: data and metadata together
--
SET eventsourcing.max_event_size = '2kB';
-- Invalid input: data over the limit
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'big', jsonb_build_object('blob', repeat('x', 3000)))$$);
-- Invalid input: data and metadata each under the limit, together over it
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'big', jsonb_build_object('blob', repeat('x', 1200)), metadata => jsonb_build_object('blob', repeat('y', 1200)))$$);
-- Invalid input: a batch element over the limit
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', jsonb_build_array(jsonb_build_object('event_type', 'small', 'data', '{}'::jsonb), jsonb_build_object('event_type', 'big', 'data', jsonb_build_object('blob', repeat('x', 3000)))))$$);
-- Invalid input: a plain INSERT over the limit
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data) VALUES ('err-1', 'big', jsonb_build_object('blob', repeat('x', 3000)))$$);
-- the same error as a client sees it
SELECT es_append('err-1', 'big', jsonb_build_object('blob', repeat('x', 3000)));
-- under the limit
SELECT sequence_number FROM es_append('err-2', 'small', jsonb_build_object('blob', repeat('x', 1900)));
RESET eventsourcing.max_event_size;
-- with the default limit (1MB) the big event is accepted
SELECT sequence_number FROM es_append('err-2', 'big', jsonb_build_object('blob', repeat('x', 3000)));
-- Invalid input: over the default limit
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'huge', jsonb_build_object('blob', repeat('x', 1048576)))$$);

--
-- expected_version
--
-- Invalid input: negative expected_version
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', expected_version => -1)$$);
-- Invalid input: expected_version at the largest bigint
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', expected_version => 9223372036854775807)$$);
-- Invalid input: negative expected_version of a batch
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}}]', -5)$$);
-- Invalid input: expected_version of a batch at the largest bigint
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}}]', 9223372036854775807)$$);
-- Invalid input: wrong expected_version
CALL pg_temp.expect_error($$SELECT es_append('err-2', 'a', '{}', expected_version => 1)$$);
-- Invalid input: a plain INSERT with the wrong sequence number
CALL pg_temp.expect_error($$INSERT INTO es.events (stream, event_type, data, sequence_number) VALUES ('err-2', 'a', '{}', 2)$$);
-- the same error as a client sees it
SELECT es_append('err-2', 'a', '{}', expected_version => 0);

--
-- event_id
--
-- Invalid input: a malformed uuid (rejected by the uuid type itself)
CALL pg_temp.expect_error($$SELECT es_append('err-1', 'a', '{}', event_id => 'not-a-uuid')$$);

--
-- Malformed batches
--
-- Invalid input: NULL stream
CALL pg_temp.expect_error($$SELECT es_append_batch(NULL, '[{"event_type": "a", "data": {}}]')$$);
-- Invalid input: NULL events
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', NULL)$$);
-- Invalid input: events is an object
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '{"event_type": "a", "data": {}}')$$);
-- Invalid input: events is a string
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '"a"')$$);
-- Invalid input: events is a number
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '1')$$);
-- Invalid input: events is JSON null
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', 'null')$$);
-- Invalid input: an empty array
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[]')$$);
-- Invalid input: an element is a number
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}}, 1]')$$);
-- Invalid input: an element is an array
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[[{"event_type": "a", "data": {}}]]')$$);
-- Invalid input: an element is a string
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '["a"]')$$);
-- Invalid input: an element is JSON null
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[null]')$$);
-- Invalid input: an element without event_type
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}}, {"data": {}}]')$$);
-- Invalid input: an element without data
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a"}]')$$);
-- Invalid input: an empty element
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{}]')$$);
-- Invalid input: an element with an unrecognized key
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}, "expected_version": 0}]')$$);
-- Invalid input: a misspelt key
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}, "userid": "1"}]')$$);
-- Invalid input: event_type is a number
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": 1, "data": {}}]')$$);
-- Invalid input: event_type is an object
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": {"name": "a"}, "data": {}}]')$$);
-- Invalid input: event_type is JSON null
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": null, "data": {}}]')$$);
-- Invalid input: event_type is empty
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "", "data": {}}]')$$);
-- Invalid input: data is JSON null
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": null}]')$$);
-- Invalid input: data is a string
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": "x"}]')$$);
-- Invalid input: metadata is an array
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}, "metadata": [1]}]')$$);
-- Invalid input: event_id is not a uuid
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}, "event_id": "00000000-0000-4000-8000-00000000000g"}]')$$);
-- Invalid input: event_id is a number
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}, "event_id": 7}]')$$);
-- Invalid input: user_id is a number
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}, "user_id": 1}]')$$);
-- Invalid input: username is a boolean
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}, "username": true}]')$$);
-- Invalid input: username is empty
CALL pg_temp.expect_error($$SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}, "username": ""}]')$$);
-- Invalid input: an invalid stream name
CALL pg_temp.expect_error($$SELECT es_append_batch('err', '[{"event_type": "a", "data": {}}]')$$);
-- the batch errors as a client sees them: the context names the element
SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}}, {"event_type": "b", "data": {}}, {"event_type": "c", "data": {}, "user": "bob"}]');
SELECT es_append_batch('err-1', '[{"event_type": "a", "data": {}}, {"event_type": "b", "data": []}]');

--
-- Nothing was stored by any of the above
--
SELECT count(*) AS err_events FROM es.events WHERE category = 'err' AND stream <> 'err-2';
SELECT stream, version FROM es.streams WHERE category = 'err' ORDER BY stream;
SELECT string_agg(sequence_number || ':' || event_type, ' ' ORDER BY sequence_number) AS err_2
  FROM es.events WHERE stream = 'err-2';
