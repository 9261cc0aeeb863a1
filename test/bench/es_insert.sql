-- test/bench/es_insert.sql - workload "es INSERT(off)": a plain INSERT into
-- es.events, through the append trigger.
\set sid random(1, :nstreams)
\set x random(0, 2000)
\set y random(0, 2000)
INSERT INTO es.events (stream, event_type, data, user_id, username)
VALUES ('playbook-' || :sid, 'module_add',
        ('{"moduleId": "m-' || :sid || '-' || :x || '", "module": {"name": "ansible.builtin.template", "params": {"src": "templates/nginx.conf.j2", "dest": "/etc/nginx/nginx.conf", "owner": "root", "group": "root", "mode": "0644"}, "when": "ansible_os_family == ''Debian''", "tags": ["web", "nginx"]}, "position": {"x": ' || :x || ', "y": ' || :y || '}}')::jsonb,
        '42', 'alice');
