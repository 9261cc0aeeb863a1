-- test/bench/baseline_insert.sql - workload "baseline": a plain INSERT of
-- the same row shape into bench.plain_events (same columns and indexes as
-- es.events, no trigger).  There is no per-stream counter: sequence_number
-- comes from a global sequence so that (stream, sequence_number) stays
-- unique.  -D nstreams=N picks the stream among playbook-1..N.
\set sid random(1, :nstreams)
\set x random(0, 2000)
\set y random(0, 2000)
INSERT INTO bench.plain_events (stream, category, sequence_number, event_type, data, user_id, username)
VALUES ('playbook-' || :sid, 'playbook', nextval('bench.plain_sequence_number_seq'), 'module_add',
        ('{"moduleId": "m-' || :sid || '-' || :x || '", "module": {"name": "ansible.builtin.template", "params": {"src": "templates/nginx.conf.j2", "dest": "/etc/nginx/nginx.conf", "owner": "root", "group": "root", "mode": "0644"}, "when": "ansible_os_family == ''Debian''", "tags": ["web", "nginx"]}, "position": {"x": ' || :x || ', "y": ' || :y || '}}')::jsonb,
        '42', 'alice');
