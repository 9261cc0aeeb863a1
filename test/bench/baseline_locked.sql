-- test/bench/baseline_locked.sql - workload "baseline+lock": what an
-- application does by hand to number a stream's events without gaps: take a
-- per-stream advisory lock for the transaction, insert max + 1, commit.
\set sid random(1, :nstreams)
\set x random(0, 2000)
\set y random(0, 2000)
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('playbook-' || :sid));
INSERT INTO bench.plain_events (stream, category, sequence_number, event_type, data, user_id, username)
SELECT 'playbook-' || :sid, 'playbook', coalesce(max(sequence_number), 0) + 1, 'module_add',
       ('{"moduleId": "m-' || :sid || '-' || :x || '", "module": {"name": "ansible.builtin.template", "params": {"src": "templates/nginx.conf.j2", "dest": "/etc/nginx/nginx.conf", "owner": "root", "group": "root", "mode": "0644"}, "when": "ansible_os_family == ''Debian''", "tags": ["web", "nginx"]}, "position": {"x": ' || :x || ', "y": ' || :y || '}}')::jsonb,
       '42', 'alice'
  FROM bench.plain_events
 WHERE stream = 'playbook-' || :sid;
END;
