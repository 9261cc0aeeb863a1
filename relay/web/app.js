/*
 * relay/web/app.js - the collaborative playbook editor (seed 000), served by
 * es-relay at / and talking to es_handle() through ws://HOST/streams/<stream>.
 * Plain browser JavaScript, no build step, no dependency.
 *
 * URL: /?stream=playbook-demo&user_id=1&username=alice  (a join dialog asks
 * for what is missing; user_id defaults to one kept in localStorage; a stream
 * name without "-" is taken as the id of a "playbook-<id>" stream).
 * ?relay=ws://host:port points the page at another relay; ?optimistic=1|0
 * sets the optimistic toggle (else the last choice, kept in localStorage).
 *
 * How the page keeps its state (the choice the brief asks to document)
 * --------------------------------------------------------------------
 * The backend is the authority; the page never changes the state on its own.
 *
 * - Base.  On its first connection the page asks {"type":"time_travel"} (no
 *   target): the snapshot is the authoritative state at sequence N.  It then
 *   asks {"type":"sync","last_sequence":max(0, N-100)}: events up to N only
 *   fill the activity panel, those after N are applied.
 * - Fold.  Each event after the base is applied in sequence order: undo and
 *   redo events by applying data.patch (RFC 6902); every other type with a
 *   JS port of its effect in examples/playbook.sql (EFFECTS below, run by a
 *   port of the engine's step language of src/engine.h: add, remove,
 *   replace, move, copy, test, exists, absent, remove_where, merge; path
 *   templates {/ptr}; $data/$event/$literal references).  Folding is cheap
 *   and needs no round trip; it is also checked: if an event does not apply
 *   locally (definitions changed on the server, a bug here), the page asks
 *   for the authoritative state after that event ({"type":"time_travel",
 *   "target_sequence":seq}) and goes on from there, so it heals itself.
 *   Every VERIFY_EVERY (50, or ?verify_every=N) events folded, the page also asks the snapshot at its
 *   lastSeq and compares it with its own state: a port that drifted from
 *   the server's definitions without failing is caught and the server's
 *   state taken.
 * - Order.  lastSeq is the last sequence applied.  Events (NOTIFY, a
 *   sync_batch, the reply to a retried action) go into an inbox keyed by
 *   sequence number, which is drained while it holds lastSeq+1; a number
 *   already applied is dropped; a gap (an event beyond lastSeq+1) sends
 *   {"type":"sync","last_sequence":lastSeq}; {"type":"resync"} (the relay
 *   lost its LISTEN) and every reconnection sync from lastSeq too (the state
 *   is kept); a "truncated":true event is fetched with a sync from
 *   sequence_number-1 (or from lastSeq if that is lower).  A sync that
 *   cannot fill a gap (events removed by compaction) reloads the base.
 * - Actions.  Every gesture sends {"type":"action","event_type",...,
 *   "event_id":crypto.randomUUID()} and stays "pending" until its event comes
 *   back (matched by event_id) or an error reply names it
 *   (original_action.event_id).  After a reconnection, a resync or an 08006
 *   error, pending actions are sent again with the same event_id (es_handle
 *   stores an action once and answers a retry with the stored event).
 * - Optimistic mode (the toggle).  The view is the confirmed state with the
 *   pending actions folded on top, recomputed whenever either changes: an
 *   accepted action becomes part of the confirmed state, a rejected one
 *   disappears (rollback) and its error is shown.  Undo/redo cannot be
 *   predicted (the server computes the patch) and are never applied ahead.
 *   Without the toggle the view is the confirmed state; a pending move or
 *   add shows a dashed ghost where the box will go.
 * - Time travel.  The slider (0..lastSeq) asks {"type":"time_travel",
 *   "target_sequence":N} and shows that snapshot read-only; gestures are
 *   refused until "Back to live".
 *
 * window.editor exposes the state and a few hooks for test/browser/.
 */
'use strict';

(function () {

/* ------------------------------------------------------------------ *
 * JSON helpers: pointers, deep copy/equality, RFC 6902, RFC 7396       *
 * ------------------------------------------------------------------ */

class ApplyError extends Error {}

function clone(v) {
	return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

function isObject(v) {
	return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function deepEqual(a, b) {
	if (a === b) return true;
	if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
	if (Array.isArray(a) !== Array.isArray(b)) return false;
	if (Array.isArray(a)) {
		if (a.length !== b.length) return false;
		for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
		return true;
	}
	const ka = Object.keys(a), kb = Object.keys(b);
	if (ka.length !== kb.length) return false;
	for (const k of ka) if (!Object.prototype.hasOwnProperty.call(b, k) || !deepEqual(a[k], b[k])) return false;
	return true;
}

/* canonical text of a JSON value (sorted keys): what the test compares */
function canonical(v) {
	if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
	if (isObject(v)) return '{' + Object.keys(v).sort().map(k => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
	return JSON.stringify(v);
}

function escapeToken(s) {
	return String(s).replace(/~/g, '~0').replace(/\//g, '~1');
}

function parsePointer(p) {
	if (p === '') return [];
	if (p[0] !== '/') throw new ApplyError('invalid pointer "' + p + '"');
	return p.slice(1).split('/').map(t => {
		if (/~[^01]|~$/.test(t)) throw new ApplyError('invalid pointer "' + p + '"');
		return t.replace(/~1/g, '/').replace(/~0/g, '~');
	});
}

function arrayIndex(arr, tok, allowEnd) {
	if (allowEnd && tok === '-') return arr.length;
	if (!/^(0|[1-9][0-9]*)$/.test(tok)) throw new ApplyError('bad array index "' + tok + '"');
	const i = Number(tok);
	if (i > arr.length || (!allowEnd && i === arr.length)) throw new ApplyError('index ' + tok + ' out of range');
	return i;
}

/* the value at pointer p, or undefined */
function getAt(doc, p) {
	let cur = doc;
	for (const tok of parsePointer(p)) {
		if (Array.isArray(cur)) {
			if (!/^(0|[1-9][0-9]*)$/.test(tok) || Number(tok) >= cur.length) return undefined;
			cur = cur[Number(tok)];
		} else if (isObject(cur)) {
			if (!Object.prototype.hasOwnProperty.call(cur, tok)) return undefined;
			cur = cur[tok];
		} else {
			return undefined;
		}
	}
	return cur;
}

/* the container holding the last token of p, and that token */
function parentOf(doc, p) {
	const toks = parsePointer(p);
	const last = toks.pop();
	let cur = doc;
	for (const tok of toks) {
		if (Array.isArray(cur)) cur = cur[arrayIndex(cur, tok, false)];
		else if (isObject(cur) && Object.prototype.hasOwnProperty.call(cur, tok)) cur = cur[tok];
		else throw new ApplyError('path "' + p + '" does not exist');
		if (cur === undefined) throw new ApplyError('path "' + p + '" does not exist');
	}
	if (!Array.isArray(cur) && !isObject(cur)) throw new ApplyError('path "' + p + '" does not exist');
	return [cur, last];
}

/* RFC 6902 operations on doc (a holder {root: state} so "" can be replaced) */
function opAdd(h, p, value) {
	if (p === '') { h.root = value; return; }
	const [c, k] = parentOf(h.root, p);
	if (Array.isArray(c)) c.splice(arrayIndex(c, k, true), 0, value);
	else c[k] = value;
}

function opRemove(h, p) {
	if (p === '') throw new ApplyError('cannot remove the root');
	const [c, k] = parentOf(h.root, p);
	if (Array.isArray(c)) c.splice(arrayIndex(c, k, false), 1);
	else if (Object.prototype.hasOwnProperty.call(c, k)) delete c[k];
	else throw new ApplyError('path "' + p + '" does not exist');
}

function opReplace(h, p, value) {
	if (getAt(h.root, p) === undefined) throw new ApplyError('path "' + p + '" does not exist');
	if (p === '') { h.root = value; return; }
	const [c, k] = parentOf(h.root, p);
	if (Array.isArray(c)) c[arrayIndex(c, k, false)] = value;
	else c[k] = value;
}

function mergePatch(target, patch) {
	if (!isObject(patch)) return clone(patch);
	const out = isObject(target) ? target : {};
	for (const k of Object.keys(patch)) {
		if (patch[k] === null) delete out[k];
		else out[k] = mergePatch(Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined, patch[k]);
	}
	return out;
}

/* one RFC 6902 op (also the ops the effects share with it) */
function patchOp(h, op) {
	switch (op.op) {
	case 'add': opAdd(h, op.path, clone(op.value)); break;
	case 'remove': opRemove(h, op.path); break;
	case 'replace': opReplace(h, op.path, clone(op.value)); break;
	case 'move': {
		const v = getAt(h.root, op.from);
		if (v === undefined) throw new ApplyError('path "' + op.from + '" does not exist');
		if (op.path !== op.from && op.path.startsWith(op.from + '/')) throw new ApplyError('cannot move into itself');
		opRemove(h, op.from);
		opAdd(h, op.path, v);
		break;
	}
	case 'copy': {
		const v = getAt(h.root, op.from);
		if (v === undefined) throw new ApplyError('path "' + op.from + '" does not exist');
		opAdd(h, op.path, clone(v));
		break;
	}
	case 'test':
		if (!deepEqual(getAt(h.root, op.path), op.value)) throw new ApplyError('test failed at "' + op.path + '"');
		break;
	default:
		throw new ApplyError('unknown op "' + op.op + '"');
	}
}

/* a new state: state with the RFC 6902 patch applied (state untouched) */
function applyPatch(state, patch) {
	const h = { root: clone(state) };
	for (const op of patch) patchOp(h, op);
	return h.root;
}

/* ------------------------------------------------------------------ *
 * The playbook effects: a port of examples/playbook.sql               *
 * ------------------------------------------------------------------ */

const CONTAINERS = { modules: {}, links: {}, plays: {}, variables: {}, roles: {} };
const ENSURE = { op: 'merge', path: '', value: CONTAINERS };

const EFFECTS = {
	module_add: [
		{ op: 'absent', path: '/modules/{/moduleId}' },
		ENSURE,
		{ op: 'add', path: '/modules/{/moduleId}', value: { $data: '' } },
		{ op: 'merge', path: '/modules/{/moduleId}', value: { config: {} } },
	],
	module_move: [
		{ op: 'exists', path: '/modules/{/moduleId}' },
		{ op: 'add', path: '/modules/{/moduleId}/position', value: { $data: '/position' } },
	],
	module_config: [
		{ op: 'exists', path: '/modules/{/moduleId}' },
		{ op: 'merge', path: '/modules/{/moduleId}/config', value: { $data: '/config' } },
	],
	module_resize: [
		{ op: 'exists', path: '/modules/{/moduleId}' },
		{ op: 'add', path: '/modules/{/moduleId}/size', value: { $data: '/size' } },
	],
	module_delete: [
		{ op: 'remove', path: '/modules/{/moduleId}' },
		{ op: 'remove_where', path: '/links', where: [
			{ pointer: '/source', equals: { $data: '/moduleId' } },
			{ pointer: '/target', equals: { $data: '/moduleId' } },
		] },
	],
	link_add: [
		{ op: 'exists', path: '/modules/{/source}' },
		{ op: 'exists', path: '/modules/{/target}' },
		{ op: 'absent', path: '/links/{/linkId}' },
		{ op: 'add', path: '/links/{/linkId}', value: { $data: '' } },
	],
	link_delete: [{ op: 'remove', path: '/links/{/linkId}' }],
	play_add: [
		{ op: 'absent', path: '/plays/{/playId}' },
		ENSURE,
		{ op: 'add', path: '/plays/{/playId}', value: { $data: '' } },
	],
	play_update: [
		{ op: 'exists', path: '/plays/{/playId}' },
		{ op: 'merge', path: '/plays/{/playId}', value: { $data: '' } },
	],
	play_delete: [{ op: 'remove', path: '/plays/{/playId}' }],
	variable_add: [
		{ op: 'absent', path: '/variables/{/name}' },
		ENSURE,
		{ op: 'add', path: '/variables/{/name}', value: { $data: '/value' } },
	],
	variable_update: [
		{ op: 'exists', path: '/variables/{/name}' },
		{ op: 'replace', path: '/variables/{/name}', value: { $data: '/value' } },
	],
	variable_delete: [{ op: 'remove', path: '/variables/{/name}' }],
	role_add: [
		{ op: 'absent', path: '/roles/{/roleId}' },
		ENSURE,
		{ op: 'add', path: '/roles/{/roleId}', value: { $data: '' } },
	],
	role_update: [
		{ op: 'exists', path: '/roles/{/roleId}' },
		{ op: 'merge', path: '/roles/{/roleId}', value: { $data: '' } },
	],
	role_delete: [{ op: 'remove', path: '/roles/{/roleId}' }],
	block_collapse: [
		{ op: 'exists', path: '/modules/{/blockId}' },
		{ op: 'add', path: '/modules/{/blockId}/collapsed', value: { $data: '/collapsed' } },
	],
	playbook_rename: [
		ENSURE,
		{ op: 'add', path: '/name', value: { $data: '/name' } },
	],
};

/* a path of an effect with its {/ptr} templates replaced */
function expandPath(path, data) {
	return path.replace(/\{([^}]*)\}/g, (_, ptr) => {
		const v = getAt(data, ptr);
		if (typeof v !== 'string' && !Number.isInteger(v)) throw new ApplyError('template {' + ptr + '} has no string in the data');
		return escapeToken(v);
	});
}

/* a value of an effect with its references resolved */
function resolveValue(v, ev) {
	if (Array.isArray(v)) return v.map(x => resolveValue(x, ev));
	if (!isObject(v)) return v;
	const keys = Object.keys(v);
	if (keys.length === 1 && ['$data', '$meta', '$event', '$literal'].includes(keys[0])) {
		const k = keys[0];
		if (k === '$literal') return clone(v.$literal);
		if (k === '$event') {
			const f = { sequence_number: ev.sequence_number, created_at: ev.timestamp, user_id: ev.user_id,
				username: ev.username, event_type: ev.event_type }[v.$event];
			return f === undefined ? null : f;
		}
		const r = getAt(k === '$data' ? ev.data : ev.metadata, v[k]);
		if (r === undefined) throw new ApplyError('reference ' + k + ' "' + v[k] + '" is missing');
		return clone(r);
	}
	const out = {};
	for (const key of keys) out[key] = resolveValue(v[key], ev);
	return out;
}

/* a new state: ev ({event_type, data, ...}) folded onto state; throws ApplyError */
function applyEvent(state, ev) {
	if (ev.event_type === 'undo' || ev.event_type === 'redo') {
		if (!ev.data || !Array.isArray(ev.data.patch)) throw new ApplyError('undo/redo event without a patch');
		return applyPatch(state, ev.data.patch);
	}
	const effect = EFFECTS[ev.event_type];
	if (!effect) return state;	/* replay ignores types without a definition */
	const h = { root: clone(state) };
	for (const step of effect) {
		const path = expandPath(step.path, ev.data);
		switch (step.op) {
		case 'exists':
			if (getAt(h.root, path) === undefined) throw new ApplyError('path "' + path + '" does not exist');
			break;
		case 'absent':
			if (getAt(h.root, path) !== undefined) throw new ApplyError('value at "' + path + '" already exists');
			break;
		case 'merge': {
			const target = getAt(h.root, path);
			const value = resolveValue(step.value, ev);
			if (!isObject(target)) throw new ApplyError('no object at "' + path + '"');
			if (!isObject(value)) throw new ApplyError('merge value is not an object');
			mergePatch(target, value);
			break;
		}
		case 'remove_where': {
			const target = getAt(h.root, path);
			const conds = step.where.map(c => ({ pointer: c.pointer, equals: resolveValue(c.equals, ev) }));
			const hit = m => conds.some(c => { const x = getAt(m, c.pointer); return x !== undefined && deepEqual(x, c.equals); });
			if (Array.isArray(target)) {
				for (let i = target.length - 1; i >= 0; i--) if (hit(target[i])) target.splice(i, 1);
			} else if (isObject(target)) {
				for (const k of Object.keys(target)) if (hit(target[k])) delete target[k];
			} else {
				throw new ApplyError('no object or array at "' + path + '"');
			}
			break;
		}
		default: {
			const op = { op: step.op, path };
			if ('value' in step) op.value = resolveValue(step.value, ev);
			if ('from' in step) op.from = expandPath(step.from, ev.data);
			patchOp(h, op);
		}
		}
	}
	return h.root;
}

/* ------------------------------------------------------------------ *
 * Small DOM helpers                                                   *
 * ------------------------------------------------------------------ */

const $ = id => document.getElementById(id);

/* el('div', {class: 'x', onclick: f}, child, 'text', ...) */
function el(tag, attrs, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
		else if (k === 'dataset') Object.assign(e.dataset, v);
		else if (k === 'value') e.value = v;
		else e.setAttribute(k, v === true ? '' : v);
	}
	for (const c of children.flat()) {
		if (c === null || c === undefined || c === false) continue;
		e.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return e;
}

function uuid() {
	if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
	/* crypto.randomUUID needs a secure context: http://<not localhost> is not */
	const b = crypto.getRandomValues(new Uint8Array(16));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	const h = [...b].map(x => x.toString(16).padStart(2, '0')).join('');
	return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
}

function shortId(id) {
	return String(id).slice(0, 6);
}

function fmtValue(v) {
	return typeof v === 'string' ? v : JSON.stringify(v);
}

/* text typed by the user: JSON if it parses as a number, boolean, null,
 * array or object, else the text itself */
function parseTyped(text) {
	const t = text.trim();
	if (/^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null|\[.*\]|\{.*\})$/s.test(t)) {
		try { return JSON.parse(t); } catch (e) { /* plain text */ }
	}
	return text;
}

function fmtTime(ts) {
	const d = new Date(ts);
	if (isNaN(d)) return '';
	const today = new Date();
	const hms = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
	return d.toDateString() === today.toDateString() ? hms : d.toLocaleDateString() + ' ' + hms;
}

/* ------------------------------------------------------------------ *
 * Session parameters                                                  *
 * ------------------------------------------------------------------ */

const params = new URLSearchParams(location.search);
const session = {
	stream: params.get('stream') || '',
	userId: params.get('user_id') || '',
	username: params.get('username') || '',
	relay: params.get('relay') || '',
};

function normaliseStream(s) {
	s = s.trim();
	return s && !s.includes('-') ? 'playbook-' + s : s;
}

/* ------------------------------------------------------------------ *
 * Editor state                                                        *
 * ------------------------------------------------------------------ */

const S = {
	ws: null,
	status: 'connecting',		/* connecting | live | resyncing | offline */
	reconnectDelay: 500,
	reconnectTimer: null,
	everOpened: false,

	confirmed: {},			/* authoritative state after lastSeq */
	lastSeq: 0,
	baseLoaded: false,		/* a base snapshot has been applied */
	currentSeq: 0,			/* highest sequence heard of */
	inbox: new Map(),		/* seq -> event, waiting for lastSeq+1 */
	syncInFlight: false,
	syncFrom: 0,
	syncWanted: false,
	snapshotReqs: [],		/* FIFO of {purpose: 'base'|'travel'|'verify', target} */
	baseInFlight: false,

	pending: new Map(),		/* event_id -> {msg, sentAt} (insertion order = send order) */
	optimistic: false,
	view: {},			/* what is displayed in live mode */

	activity: new Map(),		/* seq -> event, for the activity panel */

	travel: null,			/* {seq, state} while time travelling */
	travelWanted: null,
	travelTimer: null,

	selected: null,			/* {kind: 'module'|'link', id} */
	drag: null,
	holdIncoming: false,		/* test hook: buffer incoming events */
	held: [],
	dropIncoming: 0,		/* test hook: lose the next N events */
	foldedSinceVerify: 0,
	errors: [],			/* error replies seen (for the test) */
	log: [],
};

function debug(...a) {
	S.log.push(a.map(x => typeof x === 'string' ? x : JSON.stringify(x)).join(' '));
	if (S.log.length > 1000) S.log.shift();
}

/* ------------------------------------------------------------------ *
 * Connection                                                          *
 * ------------------------------------------------------------------ */

const VERIFY_EVERY = Math.max(1, Number(new URLSearchParams(location.search).get('verify_every')) || 50);

function wsUrl() {
	const q = new URLSearchParams();
	if (session.userId) q.set('user_id', session.userId);
	if (session.username) q.set('username', session.username);
	let base = session.relay;
	if (!base) base = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
	return base.replace(/\/+$/, '') + '/streams/' + encodeURIComponent(session.stream) + '?' + q.toString();
}

function setStatus(s) {
	S.status = s;
	const b = $('conn-badge');
	b.dataset.status = s;
	b.textContent = s;
	b.title = {
		connecting: 'Connecting to the relay…',
		live: 'Live: every change arrives as it happens',
		resyncing: 'Catching up with missed events…',
		offline: 'Offline: reconnecting; your pending actions will be sent again',
	}[s];
}

function refreshStatus() {
	if (!S.ws || S.ws.readyState !== WebSocket.OPEN) {
		setStatus(S.everOpened ? 'offline' : 'connecting');
	} else if (!S.baseLoaded) {
		setStatus('connecting');
	} else if (S.syncInFlight || S.baseInFlight || S.inbox.size > 0) {
		setStatus('resyncing');
	} else {
		setStatus('live');
	}
}

function connect() {
	clearTimeout(S.reconnectTimer);
	let ws;
	try {
		ws = new WebSocket(wsUrl());
	} catch (e) {
		toast('error', 'Cannot connect: ' + e.message);
		return;
	}
	S.ws = ws;
	refreshStatus();
	ws.onopen = () => {
		if (S.ws !== ws) return;
		debug('open');
		S.everOpened = true;
		S.reconnectDelay = 500;
		S.syncInFlight = false;
		S.syncWanted = false;
		S.baseInFlight = false;
		S.snapshotReqs = [];
		if (!S.baseLoaded) {
			requestBase();
		} else {
			requestSync(S.lastSeq);
			resendPending();
		}
		if (S.travelWanted !== null) requestTravel(S.travelWanted);
		refreshStatus();
	};
	ws.onmessage = e => {
		if (S.ws !== ws) return;
		let msg;
		try {
			msg = JSON.parse(e.data);
		} catch (err) {
			debug('bad frame', String(e.data).slice(0, 200));
			return;
		}
		if (msg.type === 'event' && S.dropIncoming > 0) {
			S.dropIncoming--;
			debug('test hook: dropped event', msg.sequence_number);
			return;
		}
		if (S.holdIncoming && msg.type === 'event') {
			S.held.push(msg);
			return;
		}
		onMessage(msg);
	};
	ws.onclose = ev => {
		if (S.ws !== ws) return;
		debug('close', ev.code, ev.reason);
		S.ws = null;
		S.syncInFlight = false;
		S.baseInFlight = false;
		S.snapshotReqs = [];
		setStatus(S.everOpened ? 'offline' : 'connecting');
		S.reconnectTimer = setTimeout(connect, S.reconnectDelay);
		S.reconnectDelay = Math.min(S.reconnectDelay * 2, 8000);
	};
	ws.onerror = () => { /* onclose follows */ };
}

function send(msg) {
	if (!S.ws || S.ws.readyState !== WebSocket.OPEN) return false;
	S.ws.send(JSON.stringify(msg));
	return true;
}

function requestBase(target) {
	const m = { type: 'time_travel' };
	if (target !== undefined) m.target_sequence = target;
	S.baseInFlight = true;
	S.snapshotReqs.push({ purpose: 'base', target });
	send(m);
	refreshStatus();
}

/* ask the snapshot at lastSeq, to compare with the local fold */
function requestVerify() {
	S.foldedSinceVerify = 0;
	if (!S.ws || S.ws.readyState !== WebSocket.OPEN) return;
	S.snapshotReqs.push({ purpose: 'verify', target: S.lastSeq, canon: canonical(S.confirmed) });
	send({ type: 'time_travel', target_sequence: S.lastSeq });
}

function requestSync(from) {
	if (S.syncInFlight) {
		S.syncWanted = true;
		S.syncWantedFrom = Math.min(S.syncWantedFrom === undefined ? from : S.syncWantedFrom, from);
		return;
	}
	if (!send({ type: 'sync', last_sequence: from })) return;
	S.syncInFlight = true;
	S.syncFrom = from;
	refreshStatus();
}

function resendPending() {
	for (const p of S.pending.values()) send(p.msg);
}

/* ------------------------------------------------------------------ *
 * Incoming messages                                                   *
 * ------------------------------------------------------------------ */

function onMessage(msg) {
	switch (msg.type) {
	case 'event':
		receiveEvent(msg);
		break;
	case 'sync_batch':
		onSyncBatch(msg);
		break;
	case 'snapshot':
		onSnapshot(msg);
		break;
	case 'error':
		onError(msg);
		break;
	case 'resync':
		debug('resync');
		requestSync(S.lastSeq);
		resendPending();
		break;
	default:
		debug('unknown message', msg.type);
	}
	refreshStatus();
}

/* module names by id, kept after a module is deleted, for the activity */
const moduleNames = new Map();

function rememberNames(state) {
	for (const [id, m] of Object.entries((state && state.modules) || {}))
		if (m && m.module && typeof m.module.name === 'string') moduleNames.set(id, m.module.name);
}

function noteActivity(ev) {
	if (typeof ev.sequence_number !== 'number') return;
	if (ev.event_type === 'module_add' && ev.data && ev.data.module) moduleNames.set(ev.data.moduleId, ev.data.module.name);
	if (!S.activity.has(ev.sequence_number) || (S.activity.get(ev.sequence_number).truncated && !ev.truncated)) {
		S.activity.set(ev.sequence_number, ev);
		if (S.activity.size > 500) S.activity.delete(Math.min(...S.activity.keys()));
		scheduleRender();
	}
}

function receiveEvent(ev) {
	const seq = ev.sequence_number;
	if (typeof seq !== 'number') return;
	if (seq > S.currentSeq) S.currentSeq = seq;
	if (ev.truncated) {
		/* too large for NOTIFY: fetch it */
		debug('truncated', seq);
		noteActivity(ev);
		if (seq > S.lastSeq) requestSync(Math.min(seq - 1, S.lastSeq));
		return;
	}
	noteActivity(ev);
	/* an answered action leaves the pending list even if already applied */
	if (ev.event_id && S.pending.has(ev.event_id) && seq <= S.lastSeq) settlePending(ev.event_id);
	if (!S.baseLoaded || seq <= S.lastSeq) return;
	S.inbox.set(seq, ev);
	drain();
	if (S.inbox.size > 0 && !S.syncInFlight && !S.baseInFlight) {
		debug('gap after', S.lastSeq, 'next held', Math.min(...S.inbox.keys()));
		requestSync(S.lastSeq);
	}
}

/* apply the inbox while it holds lastSeq + 1 */
function drain() {
	let changed = false;
	while (S.baseLoaded && !S.baseInFlight && S.inbox.has(S.lastSeq + 1)) {
		const ev = S.inbox.get(S.lastSeq + 1);
		S.inbox.delete(S.lastSeq + 1);
		try {
			S.confirmed = applyEvent(S.confirmed, ev);
		} catch (e) {
			/* does not apply here: take the server's state after it */
			debug('local fold failed at', ev.sequence_number, e.message);
			requestBase(ev.sequence_number);
			S.inbox.set(ev.sequence_number, ev);	/* dropped when the base comes */
			break;
		}
		S.lastSeq = ev.sequence_number;
		if (ev.event_id && S.pending.has(ev.event_id)) settlePending(ev.event_id);
		changed = true;
		if (++S.foldedSinceVerify >= VERIFY_EVERY) requestVerify();
	}
	for (const k of [...S.inbox.keys()]) if (k <= S.lastSeq) S.inbox.delete(k);
	if (S.lastSeq > S.currentSeq) S.currentSeq = S.lastSeq;
	if (changed) recompute();
}

function onSyncBatch(msg) {
	const from = S.syncFrom;
	S.syncInFlight = false;
	if (typeof msg.current_sequence === 'number' && msg.current_sequence > S.currentSeq) S.currentSeq = msg.current_sequence;
	for (const ev of msg.events || []) {
		noteActivity(ev);
		if (ev.event_id && S.pending.has(ev.event_id) && ev.sequence_number <= S.lastSeq) settlePending(ev.event_id);
		if (S.baseLoaded && ev.sequence_number > S.lastSeq) S.inbox.set(ev.sequence_number, ev);
	}
	drain();
	if (S.baseLoaded && !S.baseInFlight) {
		if (from <= S.lastSeq && msg.current_sequence > S.lastSeq) {
			/* the batch does not reach what it should: events were removed
			 * by compaction; take the current state instead */
			debug('sync from', from, 'left a gap at', S.lastSeq, '; reloading the state');
			S.inbox.clear();
			requestBase();
		} else if (S.inbox.size > 0) {
			/* events beyond the batch, with a hole before them */
			S.syncWanted = true;
			S.syncWantedFrom = Math.min(S.syncWantedFrom === undefined ? S.lastSeq : S.syncWantedFrom, S.lastSeq);
		}
	}
	if (S.syncWanted) {
		const f = Math.min(S.syncWantedFrom, S.lastSeq);
		S.syncWanted = false;
		S.syncWantedFrom = undefined;
		requestSync(f);
	}
	scheduleRender();
}

function onSnapshot(msg) {
	const req = S.snapshotReqs.shift() || { purpose: 'travel' };
	if (req.purpose === 'verify') {
		if (msg.sequence_number === req.target && canonical(msg.state || {}) !== req.canon) {
			debug('local state differs from the server\'s at', req.target, '; reloading it');
			requestBase();
		} else {
			debug('verified', req.target);
		}
	} else if (req.purpose === 'base') {
		S.baseInFlight = S.snapshotReqs.some(r => r.purpose === 'base');
		const first = !S.baseLoaded;
		if (msg.sequence_number >= S.lastSeq || first) {
			S.confirmed = msg.state || {};
			rememberNames(S.confirmed);
			S.lastSeq = msg.sequence_number;
			S.baseLoaded = true;
			if (S.lastSeq > S.currentSeq) S.currentSeq = S.lastSeq;
			for (const k of [...S.inbox.keys()]) if (k <= S.lastSeq) S.inbox.delete(k);
		}
		/* the first time, fetch recent history for the activity panel (and
		 * whatever came after the snapshot); later, what came after it */
		requestSync(first ? Math.max(0, S.lastSeq - 100) : S.lastSeq);
		if (first) resendPending();
		drain();
		recompute();
	} else {
		/* a time travel view, unless superseded or abandoned (Live) */
		if (S.travelWanted === null || S.travelWanted !== msg.sequence_number) return;
		S.travelWanted = null;
		S.travel = { seq: msg.sequence_number, state: msg.state || {} };
		scheduleRender();
	}
}

const ERROR_TEXT = {
	'23S02': 'That change no longer applies',
	'23S03': 'Cannot undo: someone changed the same thing since',
	'55S02': 'Nothing to undo or redo',
	'40S01': 'Someone changed the playbook first',
	'22S01': 'Invalid data',
	'22023': 'Invalid request',
	'08006': 'Connection to the database lost',
	'23S01': 'Duplicate event id',
};

function onError(msg) {
	S.errors.push(msg);
	debug('error', msg.code, msg.message);
	const orig = msg.original_action;
	let what = '';
	if (orig && orig.type === 'action') {
		if (orig.event_id && !S.pending.has(orig.event_id)) {
			/* the answer to a retry of an action already answered */
			debug('error for a settled action', orig.event_id, msg.code);
			return;
		}
		if (orig.event_id) settlePending(orig.event_id);
		what = 'Refused: ' + describeAction(orig.event_type, orig.data || {}, S.view) + ': ';
	} else if (orig && orig.type === 'time_travel') {
		const req = S.snapshotReqs.shift();
		if (req && req.purpose === 'base') {
			S.baseInFlight = S.snapshotReqs.some(r => r.purpose === 'base');
			if (!S.baseLoaded) setTimeout(() => requestBase(), 1000);
		}
		if (!req || req.purpose === 'travel') S.travelWanted = null;
		what = 'Time travel: ';
	} else if (orig && orig.type === 'sync') {
		S.syncInFlight = false;
		what = 'Sync: ';
	} else if (msg.code === '08006') {
		/* the relay lost the connection running one of our messages: the
		 * action may or may not be stored; go again (retries are safe) */
		if (S.syncInFlight) { S.syncInFlight = false; }
		const reqs = S.snapshotReqs;
		S.snapshotReqs = [];
		S.baseInFlight = false;
		requestSync(S.lastSeq);
		resendPending();
		for (const r of reqs) {
			if (r.purpose === 'base') requestBase(r.target);
			else if (S.travelWanted !== null) requestTravel(S.travelWanted);
		}
	}
	/* known codes get a plain title and the detail; ids shortened */
	const short = t => String(t).replace(/([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (_, h) => h.slice(0, 6) + '…');
	const title = ERROR_TEXT[msg.code] || msg.message || 'Error';
	const text = ERROR_TEXT[msg.code] && msg.detail ? msg.detail : [msg.message, msg.detail].filter(Boolean).join(' — ');
	toast('error', title, (what ? what.replace(/: $/, '') + ' — ' : '') + short(text), msg.code);
	recompute();
}

/* ------------------------------------------------------------------ *
 * Actions                                                             *
 * ------------------------------------------------------------------ */

/* send an action; returns its event_id (null if refused) */
function dispatch(eventType, data) {
	if (S.travel) {
		toast('info', 'Read-only while viewing history', 'Press "Back to live" to edit.');
		return null;
	}
	const msg = { type: 'action', event_type: eventType, event_id: uuid() };
	if (data !== undefined) msg.data = data;
	S.pending.set(msg.event_id, { msg, sentAt: Date.now(), optimistic: S.optimistic && EFFECTS[eventType] !== undefined });
	debug('send', eventType, msg.event_id);
	send(msg);	/* if offline, sent again on reconnection */
	recompute();
	return msg.event_id;
}

function settlePending(id) {
	S.pending.delete(id);
	scheduleRender();
}

/* the view: the confirmed state, plus pending actions in optimistic mode */
function recompute() {
	let v = S.confirmed;
	for (const p of S.pending.values()) {
		if (!p.optimistic) continue;
		try {
			v = applyEvent(v, { event_type: p.msg.event_type, data: p.msg.data, user_id: session.userId, username: session.username });
		} catch (e) {
			/* would be refused: leave it out, the error reply will say why */
		}
	}
	S.view = v;
	scheduleRender();
}

function describeAction(type, d, state) {
	const mod = id => {
		const m = state && state.modules && state.modules[id];
		if (m && m.module && m.module.name) return m.module.name;
		return moduleNames.has(id) ? moduleNames.get(id) : 'module ' + shortId(id);
	};
	switch (type) {
	case 'module_add': return 'added ' + ((d.module && d.module.name) || 'a module');
	case 'module_move': return 'moved ' + mod(d.moduleId);
	case 'module_config': return 'configured ' + mod(d.moduleId);
	case 'module_resize': return 'resized ' + mod(d.moduleId);
	case 'module_delete': return 'deleted ' + mod(d.moduleId);
	case 'link_add': return 'linked ' + mod(d.source) + ' → ' + mod(d.target);
	case 'link_delete': return 'removed a link';
	case 'play_add': return 'added play "' + d.name + '"';
	case 'play_update': return 'updated a play';
	case 'play_delete': return 'deleted a play';
	case 'variable_add': return 'added variable ' + d.name;
	case 'variable_update': return 'changed variable ' + d.name;
	case 'variable_delete': return 'deleted variable ' + d.name;
	case 'role_add': return 'added role ' + d.name;
	case 'role_update': return 'updated a role';
	case 'role_delete': return 'deleted a role';
	case 'block_collapse': return (d.collapsed ? 'collapsed ' : 'expanded ') + mod(d.blockId);
	case 'playbook_rename': return 'renamed the playbook "' + d.name + '"';
	case 'undo': return d.target_event_type ? 'undid ' + d.target_event_type.replace('_', ' ') + ' #' + d.target_sequence : 'undo';
	case 'redo': return d.target_event_type ? 'redid ' + d.target_event_type.replace('_', ' ') + ' #' + d.action_sequence : 'redo';
	default: return type;
	}
}

/* ------------------------------------------------------------------ *
 * Toasts                                                              *
 * ------------------------------------------------------------------ */

function toast(kind, title, detail, code) {
	const t = el('div', { class: 'toast ' + kind, role: kind === 'error' ? 'alert' : 'status' },
		el('div', { class: 'toast-title' }, title, code ? el('span', { class: 'code' }, code) : null),
		detail ? el('div', { class: 'toast-detail' }, detail) : null,
		el('button', { class: 'toast-close', type: 'button', title: 'Dismiss', onclick: () => t.remove() }, '×'));
	$('toasts').append(t);
	while ($('toasts').children.length > 5) $('toasts').firstElementChild.remove();
	setTimeout(() => t.classList.add('fade'), 7000);
	setTimeout(() => t.remove(), 7600);
}

/* ------------------------------------------------------------------ *
 * Time travel                                                         *
 * ------------------------------------------------------------------ */

function requestTravel(seq) {
	S.travelWanted = seq;
	S.snapshotReqs.push({ purpose: 'travel', target: seq });
	send({ type: 'time_travel', target_sequence: seq });
}

function onSlider() {
	const n = Number($('tt-slider').value);
	clearTimeout(S.travelTimer);
	if (n >= S.lastSeq) {
		goLive();
		return;
	}
	$('tt-label').textContent = 'sequence ' + n + ' / ' + S.lastSeq + ' …';
	S.travelTimer = setTimeout(() => requestTravel(n), 120);
}

function goLive() {
	clearTimeout(S.travelTimer);
	S.travel = null;
	S.travelWanted = null;
	scheduleRender();
}

/* ------------------------------------------------------------------ *
 * Rendering                                                           *
 * ------------------------------------------------------------------ */

const MODULE_W = 190;
const MODULE_H = 86;
const PALETTE = [
	['apt', 'packages (Debian)'], ['yum', 'packages (RHEL)'], ['pip', 'Python packages'],
	['copy', 'copy a file'], ['template', 'Jinja2 template'], ['file', 'files, directories'],
	['lineinfile', 'edit a line'], ['service', 'start / enable'], ['systemd', 'systemd units'],
	['user', 'accounts'], ['git', 'checkout'], ['command', 'run a command'],
	['shell', 'run in a shell'], ['debug', 'print a message'], ['uri', 'HTTP request'],
	['docker_container', 'containers'], ['block', 'group of tasks'],
];
let renderQueued = false;
const moduleEls = new Map();

function scheduleRender() {
	if (renderQueued) return;
	renderQueued = true;
	requestAnimationFrame(() => { renderQueued = false; render(); });
}

function displayed() {
	return S.travel ? S.travel.state : S.view;
}

/* a module's box: its size if resized, else tall enough for its summary */
function moduleSize(m) {
	const w = (m.size && m.size.w) || MODULE_W;
	if (m.collapsed) return { w, h: 40 };
	if (m.size && m.size.h) return { w, h: m.size.h };
	const n = Object.keys(m.config || {}).length;
	const lines = Math.max(1, Math.min(n, 3) + (n > 3 ? 1 : 0));
	return { w, h: Math.max(MODULE_H - 20, 44 + 17 * lines) };
}

function render() {
	/* select a module the user just added, once it shows */
	if (S.selectOnArrival && (displayed().modules || {})[S.selectOnArrival]) {
		S.selected = { kind: 'module', id: S.selectOnArrival };
		S.selectOnArrival = null;
		inspectorKey = '';
	}
	const st = displayed() || {};
	const readOnly = !!S.travel;
	document.body.classList.toggle('readonly', readOnly);
	document.body.classList.toggle('optimistic', S.optimistic);

	/* header */
	const nameInput = $('playbook-name');
	if (document.activeElement !== nameInput) nameInput.value = st.name || '';
	nameInput.disabled = readOnly;
	$('stream-label').textContent = session.stream;
	$('user-chip').textContent = session.username || session.userId;
	$('user-chip').title = 'user_id ' + session.userId;
	const np = S.pending.size;
	$('pending-count').hidden = np === 0;
	$('pending-count').textContent = np + ' pending';
	$('undo-btn').disabled = readOnly || !S.baseLoaded;
	$('redo-btn').disabled = readOnly || !S.baseLoaded;

	renderCanvas(st, readOnly);
	renderInspector(st, readOnly);
	renderPlays(st, readOnly);
	renderVariables(st, readOnly);
	renderRoles(st, readOnly);
	renderActivity();
	renderTimeline();
}

function renderCanvas(st, readOnly) {
	const modules = st.modules || {};
	const layer = $('modules');
	const seen = new Set();
	let maxX = 0, maxY = 0;
	for (const [id, m] of Object.entries(modules)) {
		seen.add(id);
		let e = moduleEls.get(id);
		if (!e) {
			e = buildModuleEl(id);
			moduleEls.set(id, e);
			layer.append(e);
		}
		updateModuleEl(e, id, m);
		const size = moduleSize(m);
		maxX = Math.max(maxX, (m.position && m.position.x || 0) + size.w);
		maxY = Math.max(maxY, (m.position && m.position.y || 0) + size.h);
	}
	for (const [id, e] of moduleEls) {
		if (!seen.has(id)) {
			e.remove();
			moduleEls.delete(id);
		}
	}
	if (S.selected && S.selected.kind === 'module' && !modules[S.selected.id] && !readOnly) S.selected = null;

	/* ghosts: pending moves and adds not shown yet (non-optimistic mode) */
	for (const g of layer.querySelectorAll('.ghost')) g.remove();
	if (!readOnly) {
		for (const p of S.pending.values()) {
			const d = p.msg.data || {};
			if (p.optimistic) continue;
			if (p.msg.event_type === 'module_move' || (p.msg.event_type === 'module_add' && !modules[d.moduleId])) {
				if (!d.position) continue;
				const m = modules[d.moduleId];
				const size = m ? moduleSize(m) : { w: MODULE_W, h: MODULE_H };
				layer.append(el('div', { class: 'ghost', style: `left:${d.position.x}px;top:${d.position.y}px;width:${size.w}px;height:${size.h}px` },
					(m && m.module && m.module.name) || (d.module && d.module.name) || ''));
			}
		}
	}

	/* canvas extent */
	const canvas = $('canvas');
	const wrap = $('canvas-wrap');
	canvas.style.width = Math.max(wrap.clientWidth, maxX + 400) + 'px';
	canvas.style.height = Math.max(wrap.clientHeight, maxY + 300) + 'px';
	$('empty-hint').hidden = Object.keys(modules).length > 0 || readOnly || !S.baseLoaded;

	/* links */
	const g = $('links');
	g.replaceChildren();
	for (const [lid, l] of Object.entries(st.links || {})) {
		const a = modules[l.source], b = modules[l.target];
		if (!a || !b) continue;
		const pa = portOut(a, l.source), pb = portIn(b, l.target);
		const d = linkPath(pa, pb, moduleSize(a).h, moduleSize(b).h);
		const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
		path.setAttribute('d', d);
		path.setAttribute('class', 'link' + (S.selected && S.selected.kind === 'link' && S.selected.id === lid ? ' selected' : ''));
		path.setAttribute('marker-end', 'url(#arrow)');
		path.dataset.linkId = lid;
		const hit = document.createElementNS('http://www.w3.org/2000/svg', 'path');
		hit.setAttribute('d', d);
		hit.setAttribute('class', 'link-hit');
		hit.dataset.linkId = lid;
		hit.addEventListener('pointerdown', e => {
			e.stopPropagation();
			if (!S.travel) select({ kind: 'link', id: lid });
		});
		g.append(path, hit);
	}
	const svg = $('links-layer');
	svg.setAttribute('width', canvas.style.width);
	svg.setAttribute('height', canvas.style.height);
}

function livePosition(id, m) {
	if (S.drag && S.drag.kind === 'move' && S.drag.id === id && S.drag.moved) return S.drag.pos;
	return m.position || { x: 0, y: 0 };
}

function portOut(m, id) {
	const p = livePosition(id, m), s = moduleSize(m);
	return { x: p.x + s.w, y: p.y + s.h / 2 };
}

function portIn(m, id) {
	const p = livePosition(id, m), s = moduleSize(m);
	return { x: p.x - 8, y: p.y + s.h / 2 };
}

function curve(a, b) {
	const dx = Math.max(40, Math.abs(b.x - a.x) / 2);
	return `M ${a.x} ${a.y} C ${a.x + dx} ${a.y}, ${b.x - dx} ${b.y}, ${b.x} ${b.y}`;
}

/* a link from an out port (right side) to an in port (left side) of boxes
 * ha and hb high: a curve when the target is to the right; otherwise a
 * detour that leaves to the right, runs back between the boxes (or below
 * both when they overlap vertically) and enters from the left */
function linkPath(a, b, ha, hb) {
	if (b.x >= a.x + 30) return curve(a, b);
	const apart = Math.abs(a.y - b.y) > (ha + hb) / 2 + 24;
	const lane = apart ? (a.y + b.y) / 2 : Math.max(a.y + ha / 2, b.y + hb / 2) + 28;
	const r = Math.min(44, Math.max(16, (b.x - 2) / 0.75));	/* stays right of x = 0 */
	return `M ${a.x} ${a.y} C ${a.x + r} ${a.y}, ${a.x + r} ${lane}, ${a.x} ${lane} ` +
		`L ${b.x} ${lane} C ${b.x - r} ${lane}, ${b.x - r} ${b.y}, ${b.x} ${b.y}`;
}

function buildModuleEl(id) {
	const e = el('div', { class: 'module', dataset: { moduleId: id } },
		el('div', { class: 'module-head' },
			el('span', { class: 'module-icon' }),
			el('span', { class: 'module-name' }),
			el('button', { class: 'collapse-btn', type: 'button', title: 'Collapse / expand the block' }),
			el('button', { class: 'delete-btn', type: 'button', title: 'Delete this module' }, '×')),
		el('div', { class: 'module-body' }),
		el('div', { class: 'port port-out', title: 'Drag onto another module to link' }),
		el('div', { class: 'port port-in' }),
		el('div', { class: 'resize-handle', title: 'Drag to resize' }));
	e.addEventListener('pointerdown', ev => onModulePointerDown(ev, id));
	e.querySelector('.delete-btn').addEventListener('click', ev => {
		ev.stopPropagation();
		dispatch('module_delete', { moduleId: id });
	});
	e.querySelector('.collapse-btn').addEventListener('click', ev => {
		ev.stopPropagation();
		const m = (S.view.modules || {})[id];
		if (m) dispatch('block_collapse', { blockId: id, collapsed: !m.collapsed });
	});
	return e;
}

function updateModuleEl(e, id, m) {
	const name = (m.module && m.module.name) || '?';
	const pos = livePosition(id, m);
	const size = moduleSize(m);
	e.style.left = pos.x + 'px';
	e.style.top = pos.y + 'px';
	e.style.width = size.w + 'px';
	e.style.height = size.h + 'px';
	e.dataset.x = (m.position && m.position.x) || 0;
	e.dataset.y = (m.position && m.position.y) || 0;
	e.classList.toggle('selected', !!(S.selected && S.selected.kind === 'module' && S.selected.id === id));
	e.classList.toggle('is-block', name === 'block');
	e.classList.toggle('collapsed', !!m.collapsed);
	const pendingHere = [...S.pending.values()].some(p => p.msg.data && (p.msg.data.moduleId === id || p.msg.data.blockId === id));
	e.classList.toggle('pending', pendingHere);
	e.querySelector('.module-icon').textContent = name.slice(0, 2).toUpperCase();
	e.querySelector('.module-icon').style.background = colourFor(name);
	e.querySelector('.module-name').textContent = name;
	e.querySelector('.collapse-btn').textContent = m.collapsed ? '▸' : '▾';
	const body = e.querySelector('.module-body');
	const cfg = m.config || {};
	const keys = Object.keys(cfg);
	const lines = keys.slice(0, 3).map(k => el('div', { class: 'cfg' }, el('span', { class: 'k' }, k + ':'), ' ', fmtValue(cfg[k])));
	if (keys.length > 3) lines.push(el('div', { class: 'cfg more' }, '+' + (keys.length - 3) + ' more'));
	if (keys.length === 0) lines.push(el('div', { class: 'cfg empty' }, 'no parameters'));
	body.replaceChildren(...lines);
}

function colourFor(name) {
	let h = 0;
	for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360;
	return `hsl(${h}, 55%, 45%)`;
}

/* inspector: the selected module's config form, or the selected link */
let inspectorKey = '';
let inspectorSelKey = '';

function renderInspector(st, readOnly) {
	const box = $('inspector');
	const sel = S.selected;
	const m = sel && sel.kind === 'module' && (st.modules || {})[sel.id];
	const l = sel && sel.kind === 'link' && (st.links || {})[sel.id];
	const key = JSON.stringify([sel, m, l, readOnly]);
	const selKey = JSON.stringify([sel, readOnly]);
	if (key === inspectorKey) return;
	/* the user is typing in this form: do not rebuild it under them (it is
	 * rebuilt when the focus leaves it) */
	if ((m || l) && selKey === inspectorSelKey && box.contains(document.activeElement)) return;
	inspectorKey = key;
	inspectorSelKey = selKey;
	if (m) {
		box.replaceChildren(moduleForm(sel.id, m, readOnly));
	} else if (l) {
		const mods = st.modules || {};
		const nm = id => (mods[id] && mods[id].module && mods[id].module.name) || shortId(id);
		box.replaceChildren(
			el('div', { class: 'insp-title' }, 'Link'),
			el('p', {}, nm(l.source), ' → ', nm(l.target)),
			el('div', { class: 'insp-actions' },
				el('button', { type: 'button', class: 'danger', disabled: readOnly, onclick: () => { dispatch('link_delete', { linkId: sel.id }); S.selected = null; } }, 'Delete link')));
	} else {
		box.replaceChildren(el('p', { class: 'muted' }, readOnly ? 'Read-only view of the history.' : 'Select a module or a link.'));
	}
}

function moduleForm(id, m, readOnly) {
	const cfg = m.config || {};
	const rows = el('div', { class: 'cfg-rows' });
	const addRow = (k, v) => {
		const row = el('div', { class: 'cfg-row' },
			el('input', { class: 'cfg-key', type: 'text', value: k, placeholder: 'parameter', disabled: readOnly }),
			el('input', { class: 'cfg-val', type: 'text', value: v, placeholder: 'value', disabled: readOnly }),
			el('button', { type: 'button', class: 'icon', title: 'Remove parameter', disabled: readOnly, onclick: () => row.remove() }, '×'));
		rows.append(row);
	};
	for (const [k, v] of Object.entries(cfg)) addRow(k, fmtValue(v));
	const form = el('form', { class: 'module-form', autocomplete: 'off' },
		el('div', { class: 'insp-title' }, el('span', { class: 'module-icon', style: 'background:' + colourFor(m.module.name) }, m.module.name.slice(0, 2).toUpperCase()), ' ', m.module.name),
		el('div', { class: 'muted small' }, 'id ' + shortId(id) + ' · at ' + Math.round(m.position.x) + ', ' + Math.round(m.position.y)),
		el('div', { class: 'small-title' }, 'Parameters'),
		rows,
		el('button', { type: 'button', class: 'link-btn', disabled: readOnly, onclick: () => { addRow('', ''); rows.lastChild.querySelector('input').focus(); } }, '+ parameter'),
		el('div', { class: 'insp-actions' },
			el('button', { type: 'submit', class: 'primary', disabled: readOnly }, 'Apply'),
			m.module.name === 'block' ? el('button', { type: 'button', disabled: readOnly, onclick: () => dispatch('block_collapse', { blockId: id, collapsed: !m.collapsed }) }, m.collapsed ? 'Expand' : 'Collapse') : null,
			el('button', { type: 'button', class: 'danger', disabled: readOnly, onclick: () => dispatch('module_delete', { moduleId: id }) }, 'Delete')));
	form.addEventListener('submit', ev => {
		ev.preventDefault();
		const next = {};
		for (const row of rows.querySelectorAll('.cfg-row')) {
			const k = row.querySelector('.cfg-key').value.trim();
			if (k) next[k] = parseTyped(row.querySelector('.cfg-val').value);
		}
		const change = {};
		for (const k of Object.keys(cfg)) if (!(k in next)) change[k] = null;
		for (const [k, v] of Object.entries(next)) if (!deepEqual(cfg[k], v)) change[k] = v;
		if (Object.keys(change).length === 0) return;
		document.activeElement.blur();
		inspectorKey = '';
		dispatch('module_config', { moduleId: id, config: change });
	});
	return form;
}

function removeBtn(title, onclick, readOnly) {
	return el('button', { type: 'button', class: 'icon', title, disabled: readOnly, onclick }, '×');
}

function renderPlays(st, readOnly) {
	const plays = Object.entries(st.plays || {});
	$('plays-count').textContent = plays.length || '';
	const list = $('plays-list');
	if (list.contains(document.activeElement)) return;
	list.replaceChildren(...plays.map(([pid, p]) => {
		const hosts = Array.isArray(p.hosts) ? p.hosts.join(', ') : (p.hosts || '');
		const input = el('input', { type: 'text', class: 'inline', value: hosts, placeholder: 'hosts', title: 'hosts (Enter to save)', disabled: readOnly });
		input.addEventListener('change', () => {
			if (input.value.trim() !== hosts) dispatch('play_update', { playId: pid, hosts: input.value.trim() || null });
		});
		return el('li', { dataset: { playId: pid } },
			el('span', { class: 'row-name' }, p.name), input,
			removeBtn('Delete play', () => dispatch('play_delete', { playId: pid }), readOnly));
	}));
	if (!plays.length) list.append(el('li', { class: 'muted empty' }, 'no play yet'));
	for (const i of $('play-form').elements) i.disabled = readOnly;
}

function renderVariables(st, readOnly) {
	const vars = Object.entries(st.variables || {});
	$('variables-count').textContent = vars.length || '';
	const list = $('variables-list');
	if (list.contains(document.activeElement)) return;
	list.replaceChildren(...vars.map(([name, value]) => {
		const text = fmtValue(value);
		const input = el('input', { type: 'text', class: 'inline', value: text, title: 'value (Enter to save)', disabled: readOnly });
		input.addEventListener('change', () => {
			const v = parseTyped(input.value);
			if (!deepEqual(v, value)) dispatch('variable_update', { name, value: v });
		});
		return el('li', { dataset: { variable: name } },
			el('span', { class: 'row-name mono' }, name), input,
			removeBtn('Delete variable', () => dispatch('variable_delete', { name }), readOnly));
	}));
	if (!vars.length) list.append(el('li', { class: 'muted empty' }, 'no variable yet'));
	for (const i of $('variable-form').elements) i.disabled = readOnly;
}

function renderRoles(st, readOnly) {
	const roles = Object.entries(st.roles || {});
	$('roles-count').textContent = roles.length || '';
	const list = $('roles-list');
	list.replaceChildren(...roles.map(([rid, r]) => el('li', { dataset: { roleId: rid } },
		el('span', { class: 'row-name mono wide', title: r.name }, r.name),
		removeBtn('Delete role', () => dispatch('role_delete', { roleId: rid }), readOnly))));
	if (!roles.length) list.append(el('li', { class: 'muted empty' }, 'no role yet'));
	for (const i of $('role-form').elements) i.disabled = readOnly;
}

let activityKey = '';

function renderActivity() {
	const seqs = [...S.activity.keys()].sort((a, b) => b - a).slice(0, 150);
	const key = seqs.join(',') + '|' + (S.travel ? S.travel.seq : '');
	if (key === activityKey) return;
	activityKey = key;
	const stateFor = S.view;
	$('activity').replaceChildren(...seqs.map(seq => {
		const ev = S.activity.get(seq);
		const mine = ev.user_id === session.userId;
		const future = S.travel && seq > S.travel.seq;
		return el('li', { class: (mine ? 'mine' : '') + (future ? ' future' : ''), dataset: { seq }, title: 'Click to view the playbook after event ' + seq,
			onclick: () => { $('tt-slider').value = seq; onSlider(); } },
			el('span', { class: 'seq' }, '#' + seq),
			el('span', { class: 'who', style: 'color:' + colourFor(ev.username || ev.user_id || '?') }, ev.username || ev.user_id || 'someone'),
			' ', ev.truncated ? ev.event_type : describeAction(ev.event_type, ev.data || {}, stateFor),
			el('span', { class: 'when' }, fmtTime(ev.timestamp)));
	}));
}

function renderTimeline() {
	const slider = $('tt-slider');
	slider.max = S.lastSeq;
	slider.disabled = !S.baseLoaded || S.lastSeq === 0;
	if (S.travel) {
		if (document.activeElement !== slider) slider.value = S.travel.seq;
		$('tt-label').textContent = 'sequence ' + S.travel.seq + ' / ' + S.lastSeq;
	} else if (S.travelWanted === null) {
		slider.value = S.lastSeq;
		$('tt-label').textContent = 'sequence ' + S.lastSeq + ' (live)';
	}
	$('tt-live').disabled = !S.travel;
	const banner = $('readonly-banner');
	banner.hidden = !S.travel;
	if (S.travel) $('readonly-text').textContent = 'Viewing the playbook after event #' + S.travel.seq + ' of ' + S.lastSeq + ' — read-only';
}

/* ------------------------------------------------------------------ *
 * Gestures                                                            *
 * ------------------------------------------------------------------ */

function select(sel) {
	if (JSON.stringify(sel) === JSON.stringify(S.selected)) return;
	S.selected = sel;
	scheduleRender();
}

function canvasPoint(ev) {
	const r = $('canvas').getBoundingClientRect();
	return { x: ev.clientX - r.left, y: ev.clientY - r.top };
}

function onModulePointerDown(ev, id) {
	if (ev.button !== 0) return;
	if (ev.target.closest('button')) return;
	ev.preventDefault();
	select({ kind: 'module', id });
	if (S.travel) return;
	const m = (S.view.modules || {})[id];
	if (!m) return;
	const start = canvasPoint(ev);
	if (ev.target.classList.contains('port-out')) {
		S.drag = { kind: 'link', id, start };
	} else if (ev.target.classList.contains('resize-handle')) {
		const s = moduleSize(m);
		S.drag = { kind: 'resize', id, start, size0: s, size: s };
	} else {
		S.drag = { kind: 'move', id, start, pos0: { ...m.position }, pos: { ...m.position }, moved: false };
	}
	window.addEventListener('pointermove', onDragMove);
	window.addEventListener('pointerup', onDragEnd);
	window.addEventListener('pointercancel', onDragCancel);
}

function onDragMove(ev) {
	const d = S.drag;
	if (!d) return;
	const p = canvasPoint(ev);
	const e = moduleEls.get(d.id);
	if (d.kind === 'move') {
		const nx = Math.max(0, Math.round(d.pos0.x + p.x - d.start.x));
		const ny = Math.max(0, Math.round(d.pos0.y + p.y - d.start.y));
		if (!d.moved && Math.abs(nx - d.pos0.x) + Math.abs(ny - d.pos0.y) < 3) return;
		d.moved = true;
		d.pos = { x: nx, y: ny };
		if (e) {
			e.classList.add('dragging');
			e.style.left = nx + 'px';
			e.style.top = ny + 'px';
		}
		renderCanvas(displayed(), false);	/* links follow */
	} else if (d.kind === 'resize') {
		d.size = { w: Math.max(120, Math.round(d.size0.w + p.x - d.start.x)), h: Math.max(50, Math.round(d.size0.h + p.y - d.start.y)) };
		if (e) { e.style.width = d.size.w + 'px'; e.style.height = d.size.h + 'px'; }
	} else if (d.kind === 'link') {
		const m = (S.view.modules || {})[d.id];
		if (!m) return;
		const draft = $('link-draft');
		draft.style.display = '';
		draft.setAttribute('d', curve(portOut(m, d.id), p));
		const over = document.elementFromPoint(ev.clientX, ev.clientY);
		for (const x of document.querySelectorAll('.module.link-target')) x.classList.remove('link-target');
		const t = over && over.closest('.module');
		if (t && t.dataset.moduleId !== d.id) t.classList.add('link-target');
	}
}

function endDrag() {
	window.removeEventListener('pointermove', onDragMove);
	window.removeEventListener('pointerup', onDragEnd);
	window.removeEventListener('pointercancel', onDragCancel);
	$('link-draft').style.display = 'none';	/* an SVG element has no "hidden" */
	for (const x of document.querySelectorAll('.module.link-target, .module.dragging')) x.classList.remove('link-target', 'dragging');
	const d = S.drag;
	S.drag = null;
	return d;
}

function onDragEnd(ev) {
	const d = endDrag();
	if (!d) return;
	if (d.kind === 'move' && d.moved && (d.pos.x !== d.pos0.x || d.pos.y !== d.pos0.y)) {
		dispatch('module_move', { moduleId: d.id, position: d.pos });
	} else if (d.kind === 'resize' && (d.size.w !== d.size0.w || d.size.h !== d.size0.h)) {
		dispatch('module_resize', { moduleId: d.id, size: d.size });
	} else if (d.kind === 'link') {
		const over = document.elementFromPoint(ev.clientX, ev.clientY);
		const t = over && over.closest('.module');
		if (t && t.dataset.moduleId !== d.id) {
			dispatch('link_add', { linkId: uuid(), source: d.id, target: t.dataset.moduleId });
		}
	}
	scheduleRender();
}

function onDragCancel() {
	endDrag();
	scheduleRender();
}

/* a free spot for a module added by a click */
function freeSpot() {
	const mods = Object.values(S.view.modules || {});
	const wrap = $('canvas-wrap');
	for (let row = 0; row < 50; row++) {
		for (let col = 0; col < 6; col++) {
			const x = 40 + col * (MODULE_W + 50), y = 40 + row * (MODULE_H + 44);
			if (col > 0 && x + MODULE_W > Math.max(wrap.clientWidth, 700)) break;
			const clash = mods.some(m => m.position && Math.abs(m.position.x - x) < MODULE_W && Math.abs(m.position.y - y) < MODULE_H + 20);
			if (!clash) return { x, y };
		}
	}
	return { x: 40, y: 40 };
}

function addModule(name, position) {
	name = String(name).trim();
	if (!name) return null;
	const moduleId = uuid();
	const id = dispatch('module_add', { moduleId, module: { name }, position: position || freeSpot() });
	if (id) S.selectOnArrival = moduleId;
	return moduleId;
}

function buildPalette() {
	const list = $('palette-list');
	for (const [name, hint] of PALETTE) {
		const item = el('div', { class: 'palette-item', draggable: 'true', dataset: { module: name }, title: 'Add ' + name + ' (click, or drag onto the canvas)' },
			el('span', { class: 'module-icon', style: 'background:' + colourFor(name) }, name.slice(0, 2).toUpperCase()),
			el('span', { class: 'pi-text' }, el('span', { class: 'pi-name' }, name), el('span', { class: 'pi-hint' }, hint)));
		item.addEventListener('click', () => addModule(name));
		item.addEventListener('dragstart', ev => {
			ev.dataTransfer.setData('text/x-module', name);
			ev.dataTransfer.effectAllowed = 'copy';
		});
		list.append(item);
	}
	const canvas = $('canvas');
	canvas.addEventListener('dragover', ev => {
		if (ev.dataTransfer.types.includes('text/x-module')) { ev.preventDefault(); ev.dataTransfer.dropEffect = 'copy'; }
	});
	canvas.addEventListener('drop', ev => {
		const name = ev.dataTransfer.getData('text/x-module');
		if (!name) return;
		ev.preventDefault();
		const p = canvasPoint(ev);
		addModule(name, { x: Math.max(0, Math.round(p.x - MODULE_W / 2)), y: Math.max(0, Math.round(p.y - 20)) });
	});
}

function bindUi() {
	buildPalette();
	$('custom-module-form').addEventListener('submit', ev => {
		ev.preventDefault();
		const i = $('custom-module-name');
		if (addModule(i.value)) i.value = '';
	});
	$('canvas').addEventListener('pointerdown', ev => {
		if (ev.target === $('canvas') || ev.target === $('modules') || ev.target.id === 'links-layer') select(null);
	});
	$('playbook-name').addEventListener('keydown', ev => {
		if (ev.key === 'Enter') {
			const v = ev.target.value.trim();
			if (v && v !== (S.view.name || '')) dispatch('playbook_rename', { name: v });
			ev.target.blur();
		} else if (ev.key === 'Escape') {
			ev.target.value = S.view.name || '';
			ev.target.blur();
		}
	});
	$('playbook-name').addEventListener('blur', () => scheduleRender());
	$('undo-btn').addEventListener('click', () => dispatch('undo'));
	$('redo-btn').addEventListener('click', () => dispatch('redo'));
	const opt = $('optimistic-toggle');
	opt.checked = S.optimistic;
	opt.addEventListener('change', () => {
		S.optimistic = opt.checked;
		try { localStorage.setItem('es-editor-optimistic', S.optimistic ? '1' : '0'); } catch (e) { /* private mode */ }
		recompute();
	});
	$('play-form').addEventListener('submit', ev => {
		ev.preventDefault();
		const name = $('play-name').value.trim();
		if (!name) return;
		const data = { playId: uuid(), name };
		const hosts = $('play-hosts').value.trim();
		if (hosts) data.hosts = hosts;
		if (dispatch('play_add', data)) { $('play-name').value = ''; $('play-hosts').value = ''; }
	});
	$('variable-form').addEventListener('submit', ev => {
		ev.preventDefault();
		const name = $('variable-name').value.trim();
		if (!name) return;
		if (dispatch('variable_add', { name, value: parseTyped($('variable-value').value) })) {
			$('variable-name').value = '';
			$('variable-value').value = '';
		}
	});
	$('role-form').addEventListener('submit', ev => {
		ev.preventDefault();
		const name = $('role-name').value.trim();
		if (name && dispatch('role_add', { roleId: uuid(), name })) $('role-name').value = '';
	});
	$('tt-slider').addEventListener('input', onSlider);
	$('tt-live').addEventListener('click', goLive);
	$('readonly-live').addEventListener('click', goLive);
	document.addEventListener('keydown', ev => {
		const typing = ev.target.closest && ev.target.closest('input, textarea, select');
		if (typing) return;
		if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 'z') {
			ev.preventDefault();
			dispatch(ev.shiftKey ? 'redo' : 'undo');
		} else if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 'y') {
			ev.preventDefault();
			dispatch('redo');
		} else if ((ev.key === 'Delete' || ev.key === 'Backspace') && S.selected && !S.travel) {
			ev.preventDefault();
			if (S.selected.kind === 'module') dispatch('module_delete', { moduleId: S.selected.id });
			else dispatch('link_delete', { linkId: S.selected.id });
			S.selected = null;
		} else if (ev.key === 'Escape') {
			if (S.travel) goLive(); else select(null);
		}
	});
	window.addEventListener('resize', scheduleRender);
	/* forms are not rebuilt while focused: catch up when the focus leaves */
	$('sidebar').addEventListener('focusout', () => setTimeout(scheduleRender, 0));
}

/* ------------------------------------------------------------------ *
 * Start                                                               *
 * ------------------------------------------------------------------ */

function localUserId() {
	try {
		let id = localStorage.getItem('es-editor-user-id');
		if (!id) {
			id = 'u-' + uuid().slice(0, 8);
			localStorage.setItem('es-editor-user-id', id);
		}
		return id;
	} catch (e) {
		return 'u-' + uuid().slice(0, 8);
	}
}

function start() {
	session.stream = normaliseStream(session.stream);
	if (!session.userId) session.userId = localUserId();
	const u = new URL(location.href);
	u.searchParams.set('stream', session.stream);
	u.searchParams.set('user_id', session.userId);
	u.searchParams.set('username', session.username);
	history.replaceState(null, '', u);
	document.title = session.stream + ' — Playbook editor';
	render();
	connect();
}

function init() {
	try { S.optimistic = localStorage.getItem('es-editor-optimistic') === '1'; } catch (e) { /* private mode */ }
	if (params.get('optimistic') !== null) S.optimistic = params.get('optimistic') === '1';
	bindUi();
	if (session.stream && session.username) {
		start();
		return;
	}
	const dlg = $('join-dialog');
	$('join-stream').value = session.stream || 'playbook-demo';
	let name = session.username;
	try { name = name || localStorage.getItem('es-editor-username') || ''; } catch (e) { /* private mode */ }
	$('join-username').value = name;
	setStatus('offline');
	$('conn-badge').textContent = 'not connected';
	$('join-form').addEventListener('submit', () => {
		session.stream = $('join-stream').value;
		session.username = $('join-username').value.trim();
		try { localStorage.setItem('es-editor-username', session.username); } catch (e) { /* private mode */ }
		start();
	});
	dlg.addEventListener('cancel', ev => ev.preventDefault());	/* Escape: a stream is needed */
	dlg.showModal();
}

window.editor = {
	get state() { return clone(S.confirmed); },
	get view() { return clone(displayed()); },
	get lastSeq() { return S.lastSeq; },
	get status() { return S.status; },
	get pending() { return S.pending.size; },
	get travel() { return S.travel ? { seq: S.travel.seq, state: clone(S.travel.state) } : null; },
	get errors() { return clone(S.errors); },
	get log() { return S.log.slice(); },
	canonical,
	dispatch,
	addModule,
	applyEvent,
	applyPatch,
	setOptimistic(on) { $('optimistic-toggle').checked = !!on; $('optimistic-toggle').dispatchEvent(new Event('change')); },
	/* test hooks: lose the next n events (as if a notification went
	 * missing); close the socket (as if the network dropped it) */
	dropIncoming(n) { S.dropIncoming = n; },
	disconnect() { if (S.ws) S.ws.close(); },
	/* test hook: hold incoming events (simulates a slow link), then let them through */
	holdIncoming(on) {
		S.holdIncoming = !!on;
		if (!on) { const h = S.held; S.held = []; for (const m of h) onMessage(m); }
	},
};

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();

})();
