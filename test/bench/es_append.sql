-- test/bench/es_append.sql - workloads "es_append(off)" and
-- "es_append(commit)": one es_append per transaction (autocommit); the
-- notify mode comes from PGOPTIONS.
\set sid random(1, :nstreams)
\set x random(0, 2000)
\set y random(0, 2000)
SELECT global_position FROM es_append('playbook-' || :sid, 'module_add',
        ('{"moduleId": "m-' || :sid || '-' || :x || '", "module": {"name": "ansible.builtin.template", "params": {"src": "templates/nginx.conf.j2", "dest": "/etc/nginx/nginx.conf", "owner": "root", "group": "root", "mode": "0644"}, "when": "ansible_os_family == ''Debian''", "tags": ["web", "nginx"]}, "position": {"x": ' || :x || ', "y": ' || :y || '}}')::jsonb,
        user_id => '42', username => 'alice');
