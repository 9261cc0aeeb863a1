--
-- examples/playbook.sql: event definitions for the collaborative Ansible
-- playbook editor (seed 000), category "playbook".
--
-- Load it with:  psql -v ON_ERROR_STOP=1 -f examples/playbook.sql
-- It runs in one transaction and can be loaded again (es_define replaces a
-- definition).  Once loaded, every append to a playbook-<id> stream must be
-- one of the 18 event types below, with data matching its schema, and must
-- apply to the playbook's current state; es_replay('playbook-<id>') returns
-- that state.
--
-- State of a playbook stream (es_replay):
--
--   {
--     "name":      "Web servers",                      -- playbook_rename
--     "modules":   {                                   -- the canvas
--       "<moduleId>": {                                -- the data of its module_add
--         "moduleId": "m1",
--         "module":   {"name": "apt", ...},            -- the Ansible module
--         "position": {"x": 100, "y": 200},            -- module_move
--         "config":   {...},                           -- module_config (merged)
--         "size":     {"w": 240, "h": 96},             -- module_resize
--         "collapsed": true                            -- block_collapse
--       }, ...
--     },
--     "links":     {"<linkId>": {"linkId": "l1", "source": "m1", "target": "m2"}, ...},
--     "plays":     {"<playId>": {"playId": "p1", "name": "Deploy web", "hosts": "webservers", ...}, ...},
--     "variables": {"<name>": <any JSON value>, ...},  -- the playbook's vars
--     "roles":     {"<roleId>": {"roleId": "r1", "name": "geerlingguy.nginx", ...}, ...}
--   }
--
-- Conventions:
-- * An entity (module, link, play, role) is stored as the whole data of the
--   event that created it, so fields the editor adds beyond those the schema
--   names are kept.  play_update and role_update merge their data into the
--   entity (RFC 7396: a member set to null removes that attribute).
-- * Every event that creates something first merges the empty containers
--   into the state ({"modules": {}, "links": {}, ...}), so that after the
--   first such event the state always has all five containers.
-- * Preconditions come first in each effect: creating something requires it
--   to be absent, changing or deleting it requires it to exist.  A failed
--   precondition rejects the append with SQLSTATE 23S02; data that does not
--   match the schema is rejected with 22S01; an event type not defined here
--   with 42S01.
-- * Blocks: the seed has no block_add; a block is an Ansible "block" placed
--   on the canvas like any module (module_add), and block_collapse folds or
--   unfolds it, so it requires a module with that id.
-- * Ids are non-empty strings; in a path, "{/moduleId}" is replaced by the
--   id from the event data, escaped so it always stays one path segment.
--

BEGIN;

--
-- Modules
--

-- module_add {moduleId, module: {name, ...}, position: {x, y}, [size], [config], [collapsed]}
-- creates modules/<moduleId> with the event's data and an empty config
SELECT es_define('playbook', 'module_add',
    effect => '[
        {"op": "absent", "path": "/modules/{/moduleId}"},
        {"op": "merge",  "path": "", "value": {"modules": {}, "links": {}, "plays": {}, "variables": {}, "roles": {}}},
        {"op": "add",    "path": "/modules/{/moduleId}", "value": {"$data": ""}},
        {"op": "merge",  "path": "/modules/{/moduleId}", "value": {"config": {}}}
    ]',
    schema => '{
        "type": "object",
        "required": ["moduleId", "module", "position"],
        "properties": {
            "moduleId":  {"type": "string", "minLength": 1},
            "module":    {"type": "object", "required": ["name"],
                          "properties": {"name": {"type": "string", "minLength": 1}}},
            "position":  {"type": "object", "required": ["x", "y"],
                          "properties": {"x": {"type": "number"}, "y": {"type": "number"}}},
            "size":      {"type": "object", "required": ["w", "h"],
                          "properties": {"w": {"type": "number"}, "h": {"type": "number"}}},
            "config":    {"type": "object"},
            "collapsed": {"type": "boolean"}
        }
    }');

-- module_move {moduleId, position: {x, y}}: sets the module's position
SELECT es_define('playbook', 'module_move',
    effect => '[
        {"op": "exists", "path": "/modules/{/moduleId}"},
        {"op": "add",    "path": "/modules/{/moduleId}/position", "value": {"$data": "/position"}}
    ]',
    schema => '{
        "type": "object",
        "required": ["moduleId", "position"],
        "properties": {
            "moduleId": {"type": "string", "minLength": 1},
            "position": {"type": "object", "required": ["x", "y"],
                         "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}
        }
    }');

-- module_config {moduleId, config: {...}}: merges config into the module's
-- config (a member set to null removes that parameter)
SELECT es_define('playbook', 'module_config',
    effect => '[
        {"op": "exists", "path": "/modules/{/moduleId}"},
        {"op": "merge",  "path": "/modules/{/moduleId}/config", "value": {"$data": "/config"}}
    ]',
    schema => '{
        "type": "object",
        "required": ["moduleId", "config"],
        "properties": {
            "moduleId": {"type": "string", "minLength": 1},
            "config":   {"type": "object"}
        }
    }');

-- module_resize {moduleId, size: {w, h}}: sets the module's size
SELECT es_define('playbook', 'module_resize',
    effect => '[
        {"op": "exists", "path": "/modules/{/moduleId}"},
        {"op": "add",    "path": "/modules/{/moduleId}/size", "value": {"$data": "/size"}}
    ]',
    schema => '{
        "type": "object",
        "required": ["moduleId", "size"],
        "properties": {
            "moduleId": {"type": "string", "minLength": 1},
            "size":     {"type": "object", "required": ["w", "h"],
                         "properties": {"w": {"type": "number"}, "h": {"type": "number"}}}
        }
    }');

-- module_delete {moduleId}: removes the module (it must exist) and every
-- link that starts or ends at it
SELECT es_define('playbook', 'module_delete',
    effect => '[
        {"op": "remove", "path": "/modules/{/moduleId}"},
        {"op": "remove_where", "path": "/links", "where": [
            {"pointer": "/source", "equals": {"$data": "/moduleId"}},
            {"pointer": "/target", "equals": {"$data": "/moduleId"}}
        ]}
    ]',
    schema => '{
        "type": "object",
        "required": ["moduleId"],
        "properties": {
            "moduleId": {"type": "string", "minLength": 1}
        }
    }');

--
-- Links between modules
--

-- link_add {linkId, source, target}: both modules must exist and the link
-- id must be new; creates links/<linkId> with the event's data
SELECT es_define('playbook', 'link_add',
    effect => '[
        {"op": "exists", "path": "/modules/{/source}"},
        {"op": "exists", "path": "/modules/{/target}"},
        {"op": "absent", "path": "/links/{/linkId}"},
        {"op": "add",    "path": "/links/{/linkId}", "value": {"$data": ""}}
    ]',
    schema => '{
        "type": "object",
        "required": ["linkId", "source", "target"],
        "properties": {
            "linkId": {"type": "string", "minLength": 1},
            "source": {"type": "string", "minLength": 1},
            "target": {"type": "string", "minLength": 1}
        }
    }');

-- link_delete {linkId}: removes the link (it must exist)
SELECT es_define('playbook', 'link_delete',
    effect => '[
        {"op": "remove", "path": "/links/{/linkId}"}
    ]',
    schema => '{
        "type": "object",
        "required": ["linkId"],
        "properties": {
            "linkId": {"type": "string", "minLength": 1}
        }
    }');

--
-- Plays
--

-- play_add {playId, name, [hosts], ...}: creates plays/<playId> with the
-- event's data
SELECT es_define('playbook', 'play_add',
    effect => '[
        {"op": "absent", "path": "/plays/{/playId}"},
        {"op": "merge",  "path": "", "value": {"modules": {}, "links": {}, "plays": {}, "variables": {}, "roles": {}}},
        {"op": "add",    "path": "/plays/{/playId}", "value": {"$data": ""}}
    ]',
    schema => '{
        "type": "object",
        "required": ["playId", "name"],
        "properties": {
            "playId": {"type": "string", "minLength": 1},
            "name":   {"type": "string", "minLength": 1},
            "hosts":  {"type": ["string", "array"], "items": {"type": "string"}}
        }
    }');

-- play_update {playId, ...attributes}: merges the data into the play (an
-- attribute set to null is removed; the name cannot be removed)
SELECT es_define('playbook', 'play_update',
    effect => '[
        {"op": "exists", "path": "/plays/{/playId}"},
        {"op": "merge",  "path": "/plays/{/playId}", "value": {"$data": ""}}
    ]',
    schema => '{
        "type": "object",
        "required": ["playId"],
        "properties": {
            "playId": {"type": "string", "minLength": 1},
            "name":   {"type": "string", "minLength": 1},
            "hosts":  {"type": ["string", "array", "null"], "items": {"type": "string"}}
        }
    }');

-- play_delete {playId}: removes the play (it must exist)
SELECT es_define('playbook', 'play_delete',
    effect => '[
        {"op": "remove", "path": "/plays/{/playId}"}
    ]',
    schema => '{
        "type": "object",
        "required": ["playId"],
        "properties": {
            "playId": {"type": "string", "minLength": 1}
        }
    }');

--
-- Variables: variables/<name> is the variable's value (any JSON value)
--

-- variable_add {name, value}: the variable must be new
SELECT es_define('playbook', 'variable_add',
    effect => '[
        {"op": "absent", "path": "/variables/{/name}"},
        {"op": "merge",  "path": "", "value": {"modules": {}, "links": {}, "plays": {}, "variables": {}, "roles": {}}},
        {"op": "add",    "path": "/variables/{/name}", "value": {"$data": "/value"}}
    ]',
    schema => '{
        "type": "object",
        "required": ["name", "value"],
        "properties": {
            "name": {"type": "string", "minLength": 1}
        }
    }');

-- variable_update {name, value}: the variable must exist
SELECT es_define('playbook', 'variable_update',
    effect => '[
        {"op": "exists",  "path": "/variables/{/name}"},
        {"op": "replace", "path": "/variables/{/name}", "value": {"$data": "/value"}}
    ]',
    schema => '{
        "type": "object",
        "required": ["name", "value"],
        "properties": {
            "name": {"type": "string", "minLength": 1}
        }
    }');

-- variable_delete {name}: removes the variable (it must exist)
SELECT es_define('playbook', 'variable_delete',
    effect => '[
        {"op": "remove", "path": "/variables/{/name}"}
    ]',
    schema => '{
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1}
        }
    }');

--
-- Roles
--

-- role_add {roleId, name, ...}: creates roles/<roleId> with the event's data
SELECT es_define('playbook', 'role_add',
    effect => '[
        {"op": "absent", "path": "/roles/{/roleId}"},
        {"op": "merge",  "path": "", "value": {"modules": {}, "links": {}, "plays": {}, "variables": {}, "roles": {}}},
        {"op": "add",    "path": "/roles/{/roleId}", "value": {"$data": ""}}
    ]',
    schema => '{
        "type": "object",
        "required": ["roleId", "name"],
        "properties": {
            "roleId": {"type": "string", "minLength": 1},
            "name":   {"type": "string", "minLength": 1}
        }
    }');

-- role_update {roleId, ...attributes}: merges the data into the role (an
-- attribute set to null is removed; the name cannot be removed)
SELECT es_define('playbook', 'role_update',
    effect => '[
        {"op": "exists", "path": "/roles/{/roleId}"},
        {"op": "merge",  "path": "/roles/{/roleId}", "value": {"$data": ""}}
    ]',
    schema => '{
        "type": "object",
        "required": ["roleId"],
        "properties": {
            "roleId": {"type": "string", "minLength": 1},
            "name":   {"type": "string", "minLength": 1}
        }
    }');

-- role_delete {roleId}: removes the role (it must exist)
SELECT es_define('playbook', 'role_delete',
    effect => '[
        {"op": "remove", "path": "/roles/{/roleId}"}
    ]',
    schema => '{
        "type": "object",
        "required": ["roleId"],
        "properties": {
            "roleId": {"type": "string", "minLength": 1}
        }
    }');

--
-- Blocks
--

-- block_collapse {blockId, collapsed}: folds (true) or unfolds (false) the
-- block module blockId, which must exist
SELECT es_define('playbook', 'block_collapse',
    effect => '[
        {"op": "exists", "path": "/modules/{/blockId}"},
        {"op": "add",    "path": "/modules/{/blockId}/collapsed", "value": {"$data": "/collapsed"}}
    ]',
    schema => '{
        "type": "object",
        "required": ["blockId", "collapsed"],
        "properties": {
            "blockId":   {"type": "string", "minLength": 1},
            "collapsed": {"type": "boolean"}
        }
    }');

--
-- The playbook itself
--

-- playbook_rename {name}: sets the playbook's name
SELECT es_define('playbook', 'playbook_rename',
    effect => '[
        {"op": "merge", "path": "", "value": {"modules": {}, "links": {}, "plays": {}, "variables": {}, "roles": {}}},
        {"op": "add",   "path": "/name", "value": {"$data": "/name"}}
    ]',
    schema => '{
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1}
        }
    }');

COMMIT;
