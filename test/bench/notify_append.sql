-- test/bench/notify_append.sql - the append of notify.sh: one es_append per
-- transaction (autocommit) to one of :nstreams streams of category
-- "playbook" (channel es_playbook), the event data of the other benchmarks
-- (~300 bytes jsonb).  The notify mode comes from PGOPTIONS
-- (-c eventsourcing.notify=off|commit|worker).
\set sid random(1, :nstreams)
\set x random(0, 2000)
\set y random(0, 2000)
SELECT global_position FROM es_append('playbook-' || :sid, 'module_add',
        ('{"moduleId": "m-' || :sid || '-' || :x || '", "module": {"name": "ansible.builtin.template", "params": {"src": "templates/nginx.conf.j2", "dest": "/etc/nginx/nginx.conf", "owner": "root", "group": "root", "mode": "0644"}, "when": "ansible_os_family == ''Debian''", "tags": ["web", "nginx"]}, "position": {"x": ' || :x || ', "y": ' || :y || '}}')::jsonb,
        user_id => '42', username => 'alice');
