#!/usr/bin/env node
/*
 * test/browser/editor.test.js - the playbook editor of relay/web/ in two
 * headless chromium pages (alice and bob on one playbook), through the real
 * es-relay and database.  Run by test/browser/run.sh, which builds the relay
 * and prepares the database; this script starts the relay itself (it stops
 * and restarts it in one check).
 *
 *   node editor.test.js --relay relay/es-relay --port P --dsn CONNINFO
 *        --web relay/web --out DIR [--cluster "test/cluster.sh DIR PORT"]
 *        [--relay-log FILE] [--chromium /usr/bin/chromium]
 *
 * Prints one PASS:/FAIL: line per check; exits 1 if any failed.  Every
 * gesture is a real one (mouse, keyboard) unless a check says otherwise;
 * window.editor (app.js) is read to compare states, and its test hooks
 * (holdIncoming, dropIncoming) simulate a slow link and a lost notification.
 */
'use strict';

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const puppeteer = require('puppeteer-core');

/* ---- arguments ---------------------------------------------------------- */

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
	const k = process.argv[i];
	if (!k.startsWith('--') || i + 1 >= process.argv.length) {
		console.error('usage: editor.test.js --relay BIN --port P --dsn CONNINFO --web DIR --out DIR ' +
			'[--cluster CMD] [--relay-log FILE] [--chromium PATH]');
		process.exit(2);
	}
	args[k.slice(2)] = process.argv[i + 1];
}
for (const k of ['relay', 'port', 'dsn', 'web', 'out']) {
	if (!args[k]) {
		console.error('editor.test.js: --' + k + ' is required');
		process.exit(2);
	}
}
const CHROMIUM = args.chromium || '/usr/bin/chromium';
const BASE = 'http://127.0.0.1:' + args.port;
const STREAM = 'playbook-browser' + Date.now().toString(36);
const RELAY_LOG = args['relay-log'] || path.join(args.out, 'relay.log');
fs.mkdirSync(args.out, { recursive: true });

/* ---- reporting ---------------------------------------------------------- */

let failures = 0;
let passes = 0;

function check(name, ok, detail) {
	if (ok) {
		passes++;
		console.log('PASS: ' + name);
	} else {
		failures++;
		console.log('FAIL: ' + name + (detail ? ' (' + detail + ')' : ''));
	}
	return ok;
}

/* run one check; an exception (a timeout waiting for something) fails it */
async function step(name, fn) {
	try {
		const r = await fn();
		if (r === undefined || r === true) check(name, true);
		else check(name, false, typeof r === 'string' ? r : JSON.stringify(r));
	} catch (e) {
		check(name, false, (e && e.message ? e.message : String(e)).split('\n')[0]);
	}
}

function info(msg) {
	console.log('[browser ' + new Date().toTimeString().slice(0, 8) + '] ' + msg);
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

/* ---- database ----------------------------------------------------------- */

function psql(sql) {
	return execFileSync('psql', ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', args.dsn, '-c', sql],
		{ encoding: 'utf8' }).trim();
}

function lit(s) {
	return "'" + String(s).replace(/'/g, "''") + "'";
}

function replay(seq, stream = STREAM) {
	return JSON.parse(psql('SELECT es_replay(' + lit(stream) + (seq === undefined ? '' : ', ' + seq) + ')'));
}

function version(stream = STREAM) {
	return Number(psql('SELECT es_version(' + lit(stream) + ')'));
}

/* canonical JSON (sorted keys), to compare states */
function canonical(v) {
	if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
	if (v !== null && typeof v === 'object') return '{' + Object.keys(v).sort().map(k => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
	return JSON.stringify(v);
}

/* ---- the relay ---------------------------------------------------------- */

let relay = null;

function portOpen(port) {
	return new Promise(resolve => {
		const s = net.connect(port, '127.0.0.1');
		s.on('connect', () => { s.destroy(); resolve(true); });
		s.on('error', () => resolve(false));
	});
}

async function startRelay() {
	const out = fs.openSync(RELAY_LOG, 'a');
	relay = spawn(args.relay, ['--listen', '127.0.0.1:' + args.port, '--dsn', args.dsn, '--web', args.web],
		{ stdio: ['ignore', out, out] });
	fs.closeSync(out);
	relay.exited = new Promise(resolve => relay.on('exit', (code, sig) => resolve({ code, sig })));
	for (let i = 0; i < 100; i++) {
		if (await portOpen(Number(args.port))) return;
		await sleep(100);
	}
	throw new Error('the relay does not listen on port ' + args.port);
}

async function stopRelay() {
	if (!relay) return null;
	const r = relay;
	relay = null;
	r.kill('SIGTERM');
	const t = setTimeout(() => r.kill('SIGKILL'), 5000);
	const st = await r.exited;
	clearTimeout(t);
	return st;
}

/* ---- pages -------------------------------------------------------------- */

const pageErrors = [];

async function openPage(browser, user, name, stream = STREAM) {
	const ctx = await browser.createBrowserContext();
	const page = await ctx.newPage();
	page.who = name;
	await page.setViewport({ width: 1400, height: 860 });
	page.on('pageerror', e => pageErrors.push(name + ': ' + e.message));
	page.on('console', m => {
		if (m.type() === 'error' && !/WebSocket|ERR_CONNECTION_REFUSED|net::/.test(m.text())) pageErrors.push(name + ' console: ' + m.text());
	});
	/* verify_every=5: the page compares its fold with the server's snapshot
	 * every 5 events (app.js); a difference is logged and checked below */
	await page.goto(BASE + '/?stream=' + encodeURIComponent(stream) + '&user_id=' + user + '&username=' + name + '&verify_every=5');
	return page;
}

function waitFor(page, fn, arg, timeout = 8000) {
	return page.waitForFunction(fn, { timeout, polling: 50 }, arg);
}

async function waitLive(page, timeout = 10000) {
	await waitFor(page, () => window.editor && window.editor.status === 'live' && window.editor.pending === 0, undefined, timeout);
}

function state(page) {
	return page.evaluate(() => window.editor.state);
}

async function shot(page, file) {
	await sleep(150);	/* let the last frame paint */
	await page.screenshot({ path: path.join(args.out, file) });
	info('screenshot ' + path.join(args.out, file));
}

/* the centre of an element's box, optionally offset */
async function boxOf(page, selector) {
	const h = await page.$(selector);
	if (!h) throw new Error('no element ' + selector + ' in ' + page.who + "'s page");
	const b = await h.boundingBox();
	if (!b) throw new Error(selector + ' is not visible in ' + page.who + "'s page");
	return b;
}

/* a mouse drag from (x0, y0) by (dx, dy) */
async function drag(page, x0, y0, dx, dy) {
	await page.mouse.move(x0, y0);
	await page.mouse.down();
	const n = 12;
	for (let i = 1; i <= n; i++) await page.mouse.move(x0 + dx * i / n, y0 + dy * i / n);
	await page.mouse.up();
}

/* drag module id by its header */
async function dragModule(page, id, dx, dy) {
	const b = await boxOf(page, `.module[data-module-id="${id}"] .module-name`);
	await drag(page, b.x + 10, b.y + b.height / 2, dx, dy);
}

async function clickModuleDelete(page, id) {
	const sel = `.module[data-module-id="${id}"]`;
	const b = await boxOf(page, sel + ' .module-name');
	await page.mouse.click(b.x + 5, b.y + b.height / 2);	/* select: shows its delete button */
	await page.click(sel + ' .delete-btn');
}

/* the pages and the database agree, once the pages' actions are all
 * answered; returns a difference or true */
async function converged(pages, stream = STREAM) {
	for (const p of pages) await waitFor(p, () => window.editor.pending === 0, undefined, 10000);
	const v = version(stream);
	const want = canonical(replay(undefined, stream));
	for (const p of pages) {
		try {
			await waitFor(p, ([v, want]) => window.editor.lastSeq === v && window.editor.pending === 0 &&
				window.editor.canonical(window.editor.state) === want, [v, want], 8000);
		} catch (e) {
			const got = await p.evaluate(() => ({ seq: window.editor.lastSeq, pending: window.editor.pending, state: window.editor.canonical(window.editor.state), log: window.editor.log.slice(-8) }));
			return p.who + ' at sequence ' + got.seq + ' (database ' + v + '), pending ' + got.pending +
				(got.state !== want ? ', state ' + got.state.slice(0, 300) + ' vs es_replay ' + want.slice(0, 300) : '') + '; log ' + got.log.join(' | ');
		}
	}
	return true;
}

async function domModulePos(page, id) {
	return page.evaluate(id => {
		const e = document.querySelector(`.module[data-module-id="${id}"]`);
		return e ? { x: parseFloat(e.style.left), y: parseFloat(e.style.top) } : null;
	}, id);
}

/* ---- the checks --------------------------------------------------------- */

async function main() {
	info('stream ' + STREAM + ', relay ' + BASE);
	await startRelay();
	const browser = await puppeteer.launch({
		executablePath: CHROMIUM,
		headless: process.env.ES_BROWSER_HEADFUL === '1' ? false : true,
		args: ['--no-sandbox', '--disable-dev-shm-usage'],
	});
	let A, B;
	let m1, m2;
	let m1Pos, m2Pos;
	try {
		A = await openPage(browser, '1', 'alice');
		B = await openPage(browser, '2', 'bob');

		await step('both pages load from the relay and go live (badge "live")', async () => {
			await waitLive(A);
			await waitLive(B);
			const badges = await Promise.all([A, B].map(p => p.$eval('#conn-badge', e => e.textContent)));
			if (badges.join() !== 'live,live') return 'badges ' + badges.join();
		});

		await step('A adds a module from the palette; nothing changes until its event comes back (not optimistic)', async () => {
			const atOnce = await A.evaluate(() => {
				document.querySelector('.palette-item[data-module="apt"]').click();
				return Object.keys(window.editor.view.modules || {}).length;
			});
			if (atOnce !== 0) return 'the module was shown before the server answered';
			await waitFor(A, () => document.querySelectorAll('#modules .module').length === 1);
		});

		await step('B sees the module A added', async () => {
			await waitFor(B, () => document.querySelectorAll('#modules .module').length === 1 &&
				document.querySelector('#modules .module .module-name').textContent === 'apt');
			const st = await state(B);
			m1 = Object.keys(st.modules)[0];
			m1Pos = st.modules[m1].position;
		});
		await shot(A, '01-alice-added-module.png');

		await step('B drags the module; A sees the new position', async () => {
			await dragModule(B, m1, 260, 150);
			const want = { x: m1Pos.x + 260, y: m1Pos.y + 150 };
			await waitFor(A, ([id, want]) => {
				const m = (window.editor.state.modules || {})[id];
				const e = document.querySelector(`.module[data-module-id="${id}"]`);
				return m && m.position.x === want.x && m.position.y === want.y &&
					parseFloat(e.style.left) === want.x && parseFloat(e.style.top) === want.y;
			}, [m1, want]);
			m1Pos = want;
		});
		await shot(B, '02-bob-dragged-module.png');

		await step('A adds a second module and links the two by dragging from a port; B sees the link', async () => {
			await A.click('.palette-item[data-module="service"]');
			await waitFor(A, () => Object.keys(window.editor.state.modules || {}).length === 2);
			const st = await state(A);
			m2 = Object.keys(st.modules).find(k => k !== m1);
			m2Pos = st.modules[m2].position;
			const port = await boxOf(A, `.module[data-module-id="${m1}"] .port-out`);
			const target = await boxOf(A, `.module[data-module-id="${m2}"]`);
			await drag(A, port.x + port.width / 2, port.y + port.height / 2,
				target.x + target.width / 2 - (port.x + port.width / 2), target.y + target.height / 2 - (port.y + port.height / 2));
			await waitFor(B, ([a, b]) => {
				const l = Object.values(window.editor.state.links || {});
				return l.length === 1 && l[0].source === a && l[0].target === b && document.querySelectorAll('#links path.link').length === 1;
			}, [m1, m2]);
		});

		await step('A configures a module in the inspector form; B sees its parameters', async () => {
			const b = await boxOf(A, `.module[data-module-id="${m1}"] .module-name`);
			await A.mouse.click(b.x + 5, b.y + b.height / 2);
			await waitFor(A, () => !!document.querySelector('#inspector form.module-form'));
			for (const [k, v] of [['name', 'nginx'], ['state', 'present']]) {
				await A.click('#inspector .link-btn');
				const rows = await A.$$('#inspector .cfg-row');
				const last = rows[rows.length - 1];
				await (await last.$('.cfg-key')).type(k);
				await (await last.$('.cfg-val')).type(v);
			}
			await A.click('#inspector button[type=submit]');
			await waitFor(B, id => {
				const m = (window.editor.state.modules || {})[id];
				const e = document.querySelector(`.module[data-module-id="${id}"] .module-body`);
				return m && m.config.name === 'nginx' && m.config.state === 'present' && e && e.textContent.includes('nginx');
			}, m1);
		});

		await step('A renames the playbook in the header; B sees the name', async () => {
			await A.click('#playbook-name', { clickCount: 3 });
			await A.keyboard.type('Web servers');
			await A.keyboard.press('Enter');
			await waitFor(B, () => window.editor.state.name === 'Web servers' && document.querySelector('#playbook-name').value === 'Web servers');
		});

		await step('B adds a play and A a variable in the side panel; each sees the other\'s', async () => {
			await B.type('#play-name', 'Deploy web');
			await B.type('#play-hosts', 'webservers');
			await B.click('#play-form button[type=submit]');
			await A.type('#variable-name', 'http_port');
			await A.type('#variable-value', '8080');
			await A.click('#variable-form button[type=submit]');
			await waitFor(A, () => [...document.querySelectorAll('#plays-list li .row-name')].some(e => e.textContent === 'Deploy web'));
			await waitFor(B, () => (window.editor.state.variables || {}).http_port === 8080 &&
				[...document.querySelectorAll('#variables-list li .row-name')].some(e => e.textContent === 'http_port'));
		});
		await shot(A, '03-alice-editor.png');

		await step('the activity panel shows who did what', async () => {
			await waitFor(A, () => {
				const t = document.querySelector('#activity').textContent;
				return t.includes('bob') && t.includes('moved apt') && t.includes('alice') && t.includes('added play "Deploy web"');
			});
		});

		await step('A moves a module then clicks Undo: it goes back on both pages', async () => {
			await dragModule(A, m2, 0, 200);
			await waitFor(B, ([id, y]) => ((window.editor.state.modules || {})[id] || {}).position.y === y, [m2, m2Pos.y + 200]);
			await A.click('#undo-btn');
			for (const p of [A, B]) {
				await waitFor(p, ([id, pos]) => {
					const m = (window.editor.state.modules || {})[id];
					const e = document.querySelector(`.module[data-module-id="${id}"]`);
					return m && m.position.x === pos.x && m.position.y === pos.y && parseFloat(e.style.top) === pos.y;
				}, [m2, m2Pos]);
			}
			const last = JSON.parse(psql(`SELECT row_to_json(e) FROM (SELECT event_type, user_id, data->>'target_event_type' AS t FROM es.events WHERE stream = ${lit(STREAM)} ORDER BY sequence_number DESC LIMIT 1) e`));
			if (last.event_type !== 'undo' || last.user_id !== '1' || last.t !== 'module_move') return 'last event ' + JSON.stringify(last);
		});

		await step('after the undo both pages converge to es_replay of the stream', () => converged([A, B]));
		await shot(A, '04-alice-after-undo.png');

		await step('A clicks Redo: the move comes back on both pages, still converged', async () => {
			await A.click('#redo-btn');
			await waitFor(B, ([id, y]) => ((window.editor.state.modules || {})[id] || {}).position.y === y, [m2, m2Pos.y + 200]);
			return converged([A, B]);
		});

		await step('B clicks Undo: B\'s own last action (the play) is undone, not A\'s', async () => {
			await B.click('#undo-btn');
			await waitFor(A, () => Object.keys(window.editor.state.plays || {}).length === 0 &&
				document.querySelector('#plays-list').textContent.includes('no play'));
			const st = await state(A);
			if (st.name !== 'Web servers' || st.variables.http_port !== 8080) return 'A\'s changes were touched: ' + JSON.stringify(st);
			return converged([A, B]);
		});

		await step('B reloads the page and sees the same state', async () => {
			await B.reload();
			await waitLive(B);
			const r = await converged([A, B]);
			if (r !== true) return r;
			const dom = await B.evaluate(() => ({
				modules: document.querySelectorAll('#modules .module').length,
				links: document.querySelectorAll('#links path.link').length,
				name: document.querySelector('#playbook-name').value,
				vars: document.querySelectorAll('#variables-list li[data-variable]').length,
				activity: document.querySelectorAll('#activity li').length,
				seq: window.editor.lastSeq,
			}));
			if (dom.modules !== 2 || dom.links !== 1 || dom.name !== 'Web servers' || dom.vars !== 1 || dom.activity !== dom.seq)
				return 'DOM after reload: ' + JSON.stringify(dom);
		});
		await shot(B, '05-bob-after-reload.png');

		await step('the time-travel slider shows an earlier state, read-only', async () => {
			await A.focus('#tt-slider');
			await A.keyboard.press('Home');
			await A.keyboard.press('ArrowRight');
			await waitFor(A, () => window.editor.travel && window.editor.travel.seq === 1 && !document.querySelector('#readonly-banner').hidden);
			const tv = await A.evaluate(() => window.editor.travel);
			if (canonical(tv.state) !== canonical(replay(1))) return 'snapshot at 1 differs from es_replay(stream, 1)';
			const dom = await A.evaluate(() => ({
				modules: [...document.querySelectorAll('#modules .module')].map(e => [e.dataset.moduleId, parseFloat(e.style.left), parseFloat(e.style.top)]),
				links: document.querySelectorAll('#links path.link').length,
				name: document.querySelector('#playbook-name').value,
			}));
			const first = replay(1).modules[m1].position;
			if (dom.modules.length !== 1 || dom.modules[0][0] !== m1 || dom.modules[0][1] !== first.x || dom.modules[0][2] !== first.y || dom.links !== 0 || dom.name !== '')
				return 'DOM at sequence 1: ' + JSON.stringify(dom);
			/* gestures are refused while travelling */
			const before = version();
			await A.click('.palette-item[data-module="git"]');
			await sleep(300);
			if (version() !== before) return 'an action was sent from the read-only view';
			await waitFor(A, () => [...document.querySelectorAll('.toast')].some(t => t.textContent.includes('Read-only')));
		});
		await shot(A, '06-alice-time-travel.png');

		await step('"Back to live" returns to the current state', async () => {
			await A.click('#readonly-live');
			await waitFor(A, () => !window.editor.travel && document.querySelectorAll('#modules .module').length === 2 &&
				document.querySelector('#readonly-banner').hidden);
		});

		await step('an action on a module another user deleted shows an error (A\'s events held back)', async () => {
			await A.evaluate(() => window.editor.holdIncoming(true));
			await clickModuleDelete(B, m1);
			await waitFor(B, id => !document.querySelector(`.module[data-module-id="${id}"]`), m1);
			if (!(await A.$(`.module[data-module-id="${m1}"]`))) return 'A already lost the module';
			await dragModule(A, m1, 120, 0);
			await waitFor(A, () => [...document.querySelectorAll('.toast.error')].some(t => t.textContent.includes('no longer applies') && t.textContent.includes('23S02')));
			const errs = await A.evaluate(() => window.editor.errors);
			const e = errs[errs.length - 1];
			if (e.code !== '23S02' || e.original_action.event_type !== 'module_move') return 'error ' + JSON.stringify(e);
		});
		await shot(A, '07-alice-error-toast.png');

		await step('once the held events arrive, A drops the deleted module and its link and converges', async () => {
			await A.evaluate(() => window.editor.holdIncoming(false));
			await waitFor(A, id => !document.querySelector(`.module[data-module-id="${id}"]`) && document.querySelectorAll('#links path.link').length === 0, m1);
			return converged([A, B]);
		});

		await step('optimistic toggle: A\'s change shows at once, before its event arrives', async () => {
			await A.click('#optimistic-toggle');
			await waitFor(A, () => document.body.classList.contains('optimistic'));
			await A.evaluate(() => window.editor.holdIncoming(true));
			await A.type('#variable-name', 'env');
			await A.type('#variable-value', 'prod');
			await A.click('#variable-form button[type=submit]');
			await waitFor(A, () => [...document.querySelectorAll('#variables-list li .row-name')].some(e => e.textContent === 'env') &&
				window.editor.pending === 1 && !('env' in (window.editor.state.variables || {})));
		});

		await step('optimistic toggle: a rejected action is rolled back, with an error', async () => {
			await clickModuleDelete(B, m2);
			await waitFor(B, id => !document.querySelector(`.module[data-module-id="${id}"]`), m2);
			await sleep(200);	/* the delete is stored; A does not know (held) */
			const r = await A.evaluate(id => {
				const before = window.editor.view.modules[id].position;
				window.editor.dispatch('module_move', { moduleId: id, position: { x: before.x + 150, y: before.y } });
				return { before, atOnce: window.editor.view.modules[id].position };
			}, m2);
			if (r.atOnce.x !== r.before.x + 150) return 'not applied at once: ' + JSON.stringify(r);
			await waitFor(A, ([id, x]) => {
				const v = window.editor.view.modules[id];
				const e = document.querySelector(`.module[data-module-id="${id}"]`);
				return v && v.position.x === x && e && parseFloat(e.style.left) === x &&
					[...document.querySelectorAll('.toast.error')].some(t => t.textContent.includes('23S02'));
			}, [m2, r.before.x]);
		});
		await shot(A, '08-alice-optimistic-rollback.png');

		await step('optimistic toggle: after the held events, A converges (the variable stored once)', async () => {
			await A.evaluate(() => window.editor.holdIncoming(false));
			const r = await converged([A, B]);
			if (r !== true) return r;
			const n = psql(`SELECT count(*) FROM es.events WHERE stream = ${lit(STREAM)} AND event_type = 'variable_add' AND data->>'name' = 'env'`);
			if (n !== '1') return n + ' variable_add events for env';
			await A.click('#optimistic-toggle');
		});

		await step('a lost notification is noticed (gap) and fetched with a sync', async () => {
			await B.evaluate(() => window.editor.dropIncoming(1));
			await A.click('.palette-item[data-module="copy"]');
			await waitFor(A, () => Object.values(window.editor.state.modules || {}).some(m => m.module.name === 'copy'));
			await A.type('#variable-name', 'workers');
			await A.type('#variable-value', '4');
			await A.click('#variable-form button[type=submit]');
			const r = await converged([A, B]);
			if (r !== true) return r;
			const log = await B.evaluate(() => window.editor.log);
			if (!log.some(l => l.startsWith('test hook: dropped event')) || !log.some(l => l.startsWith('gap after'))) return 'no gap seen: ' + log.slice(-6).join(' | ');
			await waitFor(B, () => [...document.querySelectorAll('#modules .module-name')].some(e => e.textContent === 'copy'));
		});

		await step('an event too large for NOTIFY ("truncated") is fetched with a sync', async () => {
			await B.type('#variable-name', 'motd');
			await B.$eval('#variable-value', e => { e.value = 'x'.repeat(9000); });
			await B.click('#variable-form button[type=submit]');
			const r = await converged([A, B]);
			if (r !== true) return r;
			const log = await A.evaluate(() => window.editor.log);
			if (!log.some(l => l.startsWith('truncated'))) return 'A saw no truncated event: ' + log.slice(-5).join(' | ');
			const len = await A.evaluate(() => (window.editor.state.variables.motd || '').length);
			if (len !== 9000) return 'motd has ' + len + ' characters';
		});

		await step('relay stopped: both badges say "offline"; an action made offline is kept pending', async () => {
			const st = await stopRelay();
			if (!st || st.code !== 0) return 'relay exit ' + JSON.stringify(st);
			await waitFor(A, () => document.querySelector('#conn-badge').dataset.status === 'offline');
			await waitFor(B, () => document.querySelector('#conn-badge').dataset.status === 'offline');
			await A.type('#variable-name', 'offline_var');
			await A.type('#variable-value', 'yes');
			await A.click('#variable-form button[type=submit]');
			await waitFor(A, () => window.editor.pending === 1 && !document.querySelector('#pending-count').hidden);
		});
		await shot(A, '09-alice-offline.png');

		await step('relay back: both pages reconnect, sync and send the pending action once', async () => {
			await startRelay();
			await waitLive(A, 20000);
			await waitLive(B, 20000);
			const r = await converged([A, B]);
			if (r !== true) return r;
			const n = psql(`SELECT count(*) FROM es.events WHERE stream = ${lit(STREAM)} AND event_type = 'variable_add' AND data->>'name' = 'offline_var'`);
			if (n !== '1') return n + ' variable_add events for offline_var';
		});

		if (args.cluster) {
			await step('database restart: the relay\'s "resync" is answered with a sync; the pages converge', async () => {
				execFileSync('bash', ['-c', args.cluster + ' restart'], { stdio: 'ignore' });
				await waitFor(A, () => window.editor.log.some(l => l === 'resync'), undefined, 30000);
				await waitFor(B, () => window.editor.log.some(l => l === 'resync'), undefined, 30000);
				await waitLive(A);
				await B.click('.palette-item[data-module="debug"]');
				await waitFor(A, () => Object.values(window.editor.state.modules || {}).some(m => m.module.name === 'debug'));
				return converged([A, B]);
			});
		}

		await step('B clicks Undo until the module B deleted comes back (per-user undo, newest first)', async () => {
			/* B's actions still in effect, newest first: (the debug module of
			 * the restart check), the motd variable, the delete of m2 */
			for (let i = 0; i < 4; i++) {
				const v = version();
				await B.click('#undo-btn');
				await waitFor(B, v => window.editor.lastSeq > v, v);
				const last = JSON.parse(psql(`SELECT row_to_json(e) FROM (SELECT event_type, user_id, data->>'target_event_type' AS t FROM es.events WHERE stream = ${lit(STREAM)} ORDER BY sequence_number DESC LIMIT 1) e`));
				if (last.event_type !== 'undo' || last.user_id !== '2') return 'last event ' + JSON.stringify(last);
				if (last.t === 'module_delete') break;
			}
			await waitFor(A, id => !!document.querySelector(`.module[data-module-id="${id}"]`), m2);
			return converged([A, B]);
		});

		const stream = STREAM + 'x';
		const C = await openPage(browser, '3', 'carol', stream);
		await step('C drags a module from the palette onto the canvas (HTML5 drag and drop)', async () => {
			await waitLive(C);
			await C.setDragInterception(true);	/* lets puppeteer drive a native drag */
			const src = await boxOf(C, '.palette-item[data-module="user"]');
			const canvas = await boxOf(C, '#canvas');
			await C.mouse.dragAndDrop({ x: src.x + 20, y: src.y + 10 }, { x: canvas.x + 715, y: canvas.y + 460 }, { delay: 30 });
			await waitFor(C, () => Object.values(window.editor.state.modules || {}).some(m =>
				m.module.name === 'user' && m.position.x === 620 && m.position.y === 440));
			await C.setDragInterception(false);
		});

		await step('a larger playbook renders (9 boxes, 6 links, a collapsed block, side panels)', async () => {
			/* built through window.editor.dispatch (the gestures are checked
			 * above): this is the overview screenshot */
			await C.evaluate(() => {
				const e = window.editor;
				const mods = [
					['apt', 60, 60, { name: 'nginx', state: 'present', update_cache: true }],
					['template', 340, 60, { src: 'nginx.conf.j2', dest: '/etc/nginx/nginx.conf', mode: '0644' }],
					['service', 620, 60, { name: 'nginx', state: 'started', enabled: true }],
					['block', 60, 250, { when: "ansible_os_family == 'Debian'" }],
					['copy', 340, 250, { src: 'index.html', dest: '/var/www/html/' }],
					['uri', 620, 250, { url: 'http://localhost/', status_code: 200 }],
					['block', 60, 440, { rescue: 'notify admins' }],
					['debug', 340, 440, { msg: 'deployed {{ inventory_hostname }}' }],
				].map(([name, x, y, config], i) => {
					const id = 'm' + i;
					e.dispatch('module_add', { moduleId: id, module: { name }, position: { x, y } });
					e.dispatch('module_config', { moduleId: id, config });
					return id;
				});
				e.dispatch('block_collapse', { blockId: mods[6], collapsed: true });
				[[0, 1], [1, 2], [2, 4], [3, 4], [4, 5], [5, 7]].forEach(([a, b], i) =>
					e.dispatch('link_add', { linkId: 'l' + i, source: mods[a], target: mods[b] }));
				e.dispatch('playbook_rename', { name: 'Deploy the web tier' });
				e.dispatch('play_add', { playId: 'p1', name: 'Web servers', hosts: 'webservers' });
				e.dispatch('play_add', { playId: 'p2', name: 'Monitoring', hosts: ['monitoring', 'prometheus'] });
				e.dispatch('variable_add', { name: 'http_port', value: 80 });
				e.dispatch('variable_add', { name: 'server_name', value: 'www.example.org' });
				e.dispatch('variable_add', { name: 'packages', value: ['nginx', 'curl'] });
				e.dispatch('role_add', { roleId: 'r1', name: 'geerlingguy.nginx' });
				e.dispatch('role_add', { roleId: 'r2', name: 'geerlingguy.certbot' });
			});
			const r = await converged([C], stream);
			if (r !== true) return r;
			const b = await boxOf(C, '.module[data-module-id="m1"] .module-name');
			await C.mouse.click(b.x + 5, b.y + b.height / 2);
			const dom = await C.evaluate(() => ({
				modules: document.querySelectorAll('#modules .module').length,
				collapsed: document.querySelectorAll('#modules .module.collapsed').length,
				links: document.querySelectorAll('#links path.link').length,
				plays: document.querySelectorAll('#plays-list li[data-play-id]').length,
				vars: document.querySelectorAll('#variables-list li[data-variable]').length,
				roles: document.querySelectorAll('#roles-list li[data-role-id]').length,
			}));
			await shot(C, '11-overview.png');
			await C.browserContext().close();
			if (canonical(dom) !== canonical({ modules: 9, collapsed: 1, links: 6, plays: 2, vars: 3, roles: 2 })) return 'DOM ' + JSON.stringify(dom);
		});

		await step('300 random actions of every type from both pages at once (many refused): they converge', async () => {
			/* through window.editor.dispatch: exercises the JS port of the
			 * effects, the undo/redo patches and the error path */
			const run = (p, seed) => p.evaluate(async seed => {
				let x = seed;
				const rnd = n => { x = (x * 1103515245 + 12345) % 2147483648; return x % n; };
				const pick = a => a[rnd(a.length)];
				const ids = ['r1', 'r2', 'r3', 'r4', 'r5'];
				const e = window.editor;
				for (let i = 0; i < 150; i++) {
					const m = pick(ids), n = pick(ids);
					const t = pick(['module_add', 'module_add', 'module_move', 'module_config', 'module_resize', 'module_delete',
						'link_add', 'link_delete', 'play_add', 'play_update', 'play_delete', 'variable_add', 'variable_update',
						'variable_delete', 'role_add', 'role_update', 'role_delete', 'block_collapse', 'playbook_rename', 'undo', 'redo']);
					const d = {
						module_add: { moduleId: m, module: { name: pick(['apt', 'block', 'copy']) }, position: { x: rnd(800), y: rnd(500) } },
						module_move: { moduleId: m, position: { x: rnd(800), y: rnd(500) } },
						module_config: { moduleId: m, config: { [pick(['a', 'b', 'c'])]: pick([null, 1, 'v', { deep: { k: rnd(3) } }, [1, 2]]) } },
						module_resize: { moduleId: m, size: { w: 120 + rnd(200), h: 50 + rnd(100) } },
						module_delete: { moduleId: m },
						link_add: { linkId: 'l' + rnd(4), source: m, target: n },
						link_delete: { linkId: 'l' + rnd(4) },
						play_add: { playId: 'p' + rnd(3), name: 'play ' + rnd(9), hosts: pick(['web', ['a', 'b']]) },
						play_update: { playId: 'p' + rnd(3), hosts: pick([null, 'db', ['x']]), vars: pick([undefined, { k: 1 }, null]) },
						play_delete: { playId: 'p' + rnd(3) },
						variable_add: { name: 'v' + rnd(4), value: pick([1, 'x', { o: [1] }, null, true]) },
						variable_update: { name: 'v' + rnd(4), value: pick([2, 'y', [], {}]) },
						variable_delete: { name: 'v' + rnd(4) },
						role_add: { roleId: 'o' + rnd(3), name: 'role' + rnd(5) },
						role_update: { roleId: 'o' + rnd(3), version: pick(['1.0', null]) },
						role_delete: { roleId: 'o' + rnd(3) },
						block_collapse: { blockId: m, collapsed: pick([true, false]) },
						playbook_rename: { name: 'n' + rnd(100) },
						undo: undefined, redo: undefined,
					}[t];
					e.dispatch(t, d === undefined ? undefined : JSON.parse(JSON.stringify(d)));
					if (rnd(4) === 0) await new Promise(r => setTimeout(r, rnd(15)));
				}
			}, seed);
			const stream = STREAM + 'r';
			const P = await openPage(browser, '4', 'dora', stream);
			const Q = await openPage(browser, '5', 'ed', stream);
			await waitLive(P);
			await waitLive(Q);
			await Q.evaluate(() => window.editor.setOptimistic(true));
			await Promise.all([run(P, 7), run(Q, 11)]);
			const r = await converged([P, Q], stream);
			const bad = [];
			for (const p of [P, Q]) {
				const log = await p.evaluate(() => window.editor.log);
				bad.push(...log.filter(l => l.includes('differs') || l.includes('local fold failed')).map(l => p.who + ': ' + l));
			}
			const n = version(stream);
			const errs = (await P.evaluate(() => window.editor.errors.length)) + (await Q.evaluate(() => window.editor.errors.length));
			await shot(Q, '12-random-actions.png');
			await P.browserContext().close();
			await Q.browserContext().close();
			if (r !== true) return r;
			if (bad.length) return bad.slice(0, 4).join(' | ');
			const ur = psql(`SELECT count(*) FROM es.events WHERE stream = ${lit(stream)} AND event_type IN ('undo', 'redo')`);
			info('random actions: ' + n + ' stored (' + ur + ' undo/redo), ' + errs + ' refused');
			if (n < 50 || errs < 20) return n + ' stored, ' + errs + ' refused: not a useful mix';
		});

		await step('the pages\' own fold of the events never differed from the server\'s snapshots', async () => {
			for (const p of [A, B]) {
				const log = await p.evaluate(() => window.editor.log);
				const bad = log.filter(l => l.includes('differs') || l.includes('local fold failed'));
				if (bad.length) return p.who + ': ' + bad.join(' | ');
				if (!log.some(l => l.startsWith('verified'))) return p.who + ' verified nothing';
			}
		});

		await step('no JavaScript error in the pages', () => pageErrors.length === 0 ? true : pageErrors.slice(0, 5).join(' | '));

		await shot(A, '10-alice-final.png');
		await shot(B, '10-bob-final.png');
	} finally {
		await browser.close().catch(() => {});
		const st = await stopRelay();
		if (st) check('relay stops on SIGTERM with status 0', st.code === 0, JSON.stringify(st));
	}
	console.log('browser suite: ' + passes + ' passed, ' + failures + ' failed');
	process.exit(failures ? 1 : 0);
}

main().catch(e => {
	console.log('FAIL: editor.test.js crashed: ' + (e && e.stack ? e.stack : e));
	if (relay) relay.kill('SIGKILL');
	process.exit(1);
});
