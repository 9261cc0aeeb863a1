-- test/bench/state_append.sql - workloads "validated" and "unvalidated" of
-- state.sh: one es_append per transaction to one of nstreams streams of
-- category :category, half module_add (a fresh random id), half module_move
-- of module "m0", which state.sh adds to every stream beforehand.  The same
-- script runs against a category with definitions (every event validated:
-- schema + effect on the stream's state) and one without; every event is
-- valid, so no transaction may fail.
-- -D category=playbook|freeform -D nstreams=N -D owned=0|1 -D nclients=C
-- owned=1: client k (0-based) appends only to its own nstreams / C
-- streams, so that no other session appends to a stream between two of its
-- appends (a backend's cached state of the stream is never stale).
\if :owned
\set sid 1 + (:client_id % :nclients) * (:nstreams / :nclients) + random(0, :nstreams / :nclients - 1)
\else
\set sid random(1, :nstreams)
\endif
\set x random(0, 2000)
\set y random(0, 2000)
\set add random(0, 1)
\if :add
SELECT global_position FROM es_append(:category::text || '-' || :sid, 'module_add',
        ('{"moduleId": "' || md5(random()::text) || '", "module": {"name": "ansible.builtin.template", "params": {"src": "templates/nginx.conf.j2", "dest": "/etc/nginx/nginx.conf", "owner": "root", "group": "root", "mode": "0644"}, "when": "ansible_os_family == ''Debian''", "tags": ["web", "nginx"], "position": {"x": ' || :x || ', "y": ' || :y || '}}}')::jsonb,
        user_id => '42', username => 'alice');
\else
SELECT global_position FROM es_append(:category::text || '-' || :sid, 'module_move',
        ('{"moduleId": "m0", "position": {"x": ' || :x || ', "y": ' || :y || '}}')::jsonb,
        user_id => '42', username => 'alice');
\endif
