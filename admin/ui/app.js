// Edge dashboard (issue 21). Plain JavaScript, no dependencies. Everything
// the node sends is written with textContent, never as HTML: this page
// holds the admin token.
'use strict';

const KEY = 'edge-admin-token';
const $ = (id) => document.getElementById(id);
let timers = [];
let lastSeq = 0;
let events = [];

// el builds an element; children are nodes or strings (made text nodes).
function el(tag, cls, ...children) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function td(label, ...children) {
  const c = el('td', null, ...children);
  c.dataset.label = label;
  return c;
}

class Unauthorized extends Error {}

async function api(path, opts = {}) {
  const token = opts.token || sessionStorage.getItem(KEY);
  const headers = { Authorization: 'Bearer ' + token };
  if (opts.body) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method: opts.method || 'GET', headers, body: opts.body ? JSON.stringify(opts.body) : undefined,
    credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
  });
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (resp.status === 401) throw new Unauthorized();
  if (!resp.ok) {
    const msg = body && body.error ? body.error.message : resp.status + ' ' + resp.statusText;
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
}

function when(s) {
  if (!s) return '–';
  const d = new Date(s);
  if (isNaN(d) || d.getFullYear() < 2) return '–';
  return d.toISOString().replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');
}

function ago(s) {
  if (!s) return 'never';
  const sec = Math.round((Date.now() - new Date(s)) / 1000);
  if (sec < 60) return sec + ' s ago';
  if (sec < 3600) return Math.round(sec / 60) + ' min ago';
  if (sec < 86400) return Math.round(sec / 3600) + ' h ago';
  return Math.round(sec / 86400) + ' d ago';
}

function showError(where, err) {
  if (err instanceof Unauthorized) { logout('The node refused the token (401): log in again.'); return; }
  $(where).textContent = err ? String(err.message || err) : '';
}

// ---- login ----

async function login(token) {
  $('login-error').textContent = '';
  try {
    await api('/api/v1/fleet', { token });
  } catch (err) {
    sessionStorage.removeItem(KEY);
    $('token').value = '';
    $('login-error').textContent = err instanceof Unauthorized
      ? 'Wrong token: the node refused it (401 Unauthorized). Copy it again from admin.token_file.'
      : 'Cannot reach the admin API: ' + (err.message || err);
    return;
  }
  sessionStorage.setItem(KEY, token);
  $('token').value = '';
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  start();
}

function logout(msg) {
  for (const t of timers) clearInterval(t);
  timers = [];
  sessionStorage.removeItem(KEY);
  $('app').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = msg || '';
  lastSeq = 0;
  events = [];
  $('event-list').replaceChildren();
}

function start() {
  refreshSlow();
  refreshEvents();
  timers.push(setInterval(refreshSlow, 30000));
  timers.push(setInterval(refreshEvents, 3000));
}

async function refreshSlow() {
  $('app-error').textContent = '';
  const results = await Promise.allSettled([refreshCerts(), refreshProps(), refreshCache(), refreshFleet()]);
  for (const r of results) {
    if (r.status === 'rejected') { showError('app-error', r.reason); break; }
  }
  $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}

// ---- certificates ----

// The rows shown: the API orders them (failed, expired, pending, active;
// soonest to expire first) and sends only these, whatever the node holds.
const CERT_ROWS = 100;

async function refreshCerts() {
  const { certificates, total } = await api('/api/v1/certificates?order=attention&limit=' + CERT_ROWS);
  const now = Date.now();
  const rows = [];
  let soon = 0, bad = 0;
  for (const c of certificates) {
    const notAfter = Date.parse(c.not_after), notBefore = Date.parse(c.not_before);
    const valid = notAfter > 0 && new Date(notAfter).getFullYear() > 1;
    const days = valid ? Math.floor((notAfter - now) / 86400000) : null;
    if (c.status === 'failed' || c.status === 'expired') bad++;
    else if (days !== null && days < 14) soon++;
    const status = el('td', null, el('span', 'badge ' + c.status, c.status));
    status.dataset.label = 'Status';
    if (c.status_detail) status.append(el('div', 'detail', c.status_detail));
    const r = c.renewal || {};
    const renewal = [];
    if (r.state && r.state !== 'none') renewal.push(el('span', 'badge ' + r.state, r.state));
    if (r.renew_at) renewal.push(el('div', null, 'due ' + when(r.renew_at)));
    if (r.ari_window) renewal.push(el('div', 'muted', 'ARI ' + when(r.ari_window.start) + ' – ' + when(r.ari_window.end)));
    if (r.state === 'backoff' && r.next_attempt_at) renewal.push(el('div', 'muted', 'next attempt ' + when(r.next_attempt_at)));
    if (r.last_error && r.last_error !== c.status_detail) renewal.push(el('div', 'detail', r.last_error));
    if (!renewal.length) renewal.push(el('span', 'muted', 'not automatic'));
    const daysCell = td('Days left', days === null ? '–' : String(days));
    daysCell.className = 'num' + (days !== null && days < 7 ? ' warn' : '');
    rows.push(el('tr', 'cert',
      td('Name', el('strong', null, c.name), el('div', 'muted', (c.subject_names || []).join(', '))),
      status, daysCell,
      td('Validity', valid && notBefore > 0 ? timeline(notBefore, notAfter, now, r) : '–'),
      td('Renewal', ...renewal),
      td('Properties', (c.properties || []).join(', ') || '–')));
  }
  if (!rows.length) rows.push(el('tr', null, el('td', 'muted', 'No certificates.')));
  $('cert-rows').replaceChildren(...rows);
  $('cert-more').textContent = total > certificates.length
    ? 'The first ' + certificates.length + ' of ' + total + ' are shown, in this order; edge cert list shows all.' : '';
  const more = total > certificates.length ? 'at least ' : '';
  $('t-certs').textContent = String(total);
  $('t-certs-sub').textContent = bad ? (bad === certificates.length ? more : '') + bad + ' failed or expired'
    : soon ? (soon === certificates.length ? more : '') + soon + ' expire within 14 days' : 'none failing';
  $('t-certs').className = 'big' + (bad ? ' bad' : soon ? ' warn' : '');
}

// timeline draws not_before → not_after with now, renew_at and the ARI
// window on it.
function timeline(from, to, now, r) {
  const span = to - from;
  const pct = (t) => Math.min(100, Math.max(0, ((t - from) / span) * 100)) + '%';
  const bar = el('div', 'timeline');
  bar.title = when(new Date(from).toISOString()) + ' → ' + when(new Date(to).toISOString());
  const used = el('div', 'used');
  used.style.width = pct(now);
  bar.append(used);
  if (r.ari_window && r.ari_window.start) {
    const w = el('div', 'ari');
    const s = Date.parse(r.ari_window.start), e = Date.parse(r.ari_window.end);
    w.style.left = pct(s);
    w.style.width = Math.max(1, ((Math.min(e, to) - Math.max(s, from)) / span) * 100) + '%';
    bar.append(w);
  }
  if (r.renew_at) {
    const m = el('div', 'due');
    m.style.left = pct(Date.parse(r.renew_at));
    bar.append(m);
  }
  return bar;
}

// ---- properties ----

async function refreshProps() {
  const { properties, rejected } = await api('/api/v1/properties');
  const rows = properties.map((p) => {
    const origins = el('td', null);
    origins.dataset.label = 'Origins';
    for (const o of p.origins || []) {
      const state = o.healthy === undefined ? 'unknown' : o.healthy ? 'up' : 'down';
      origins.append(el('div', null, el('span', 'badge ' + state, state), ' ' + o.url));
    }
    const name = td('Name', el('strong', null, p.name));
    for (const e of p.load_error || []) name.append(el('div', 'detail', 'serving last good version: ' + e));
    return el('tr', 'prop', name, td('Hostnames', (p.hostnames || []).join(', ')), origins,
      td('Certificate', p.certificate || '–'), td('Cache', el('span', 'badge ' + (p.cache ? 'on' : 'off'), p.cache ? 'on' : 'off')));
  });
  if (!rows.length) rows.push(el('tr', null, el('td', 'muted', 'No properties.')));
  $('prop-rows').replaceChildren(...rows);
  const rej = (rejected || []).map((r) => el('div', 'detail', 'Rejected ' + r.file + ': ' + (r.load_error || []).join('; ')));
  $('rejected').replaceChildren(...rej);
  $('t-props').textContent = String(properties.length);
  $('t-props-sub').textContent = rej.length ? rej.length + (rej.length === 1 ? ' file' : ' files') + ' rejected' : 'all files load';
}

// ---- cache ----

async function refreshCache() {
  let hist, stats;
  try {
    [hist, stats] = await Promise.all([api('/api/v1/cache/history'), api('/api/v1/cache')]);
  } catch (err) {
    if (err.status === 501) { $('cache').hidden = true; return; }
    throw err;
  }
  const pts = hist.points || [];
  let hits = 0, total = 0, served = 0, fetched = 0;
  for (const p of pts) {
    hits += p.hits + p.stale + p.revalidated;
    total += p.hits + p.stale + p.revalidated + p.misses;
    served += p.served_bytes;
    fetched += p.origin_bytes || 0;
  }
  $('t-hit').textContent = total ? Math.round((hits / total) * 100) + '%' : '–';
  $('t-hit-sub').textContent = total ? hits + ' of ' + total + ' cacheable requests; ' + bytes(served) + ' from cache, ' + bytes(fetched) + ' from origins' : 'no cacheable requests yet; ' + bytes(fetched) + ' from origins';
  $('t-held').textContent = String(stats.memory.objects + stats.disk.objects);
  $('t-held-sub').textContent = bytes(stats.memory.bytes + stats.disk.bytes) + ' in memory and on disk';
  const tier = (name, t, size) => el('tr', null, td('Tier', name), td('Objects', String(t.objects)),
    td('Bytes', bytes(t.bytes)), td('Size', size ? bytes(size) : 'off'), td('Evictions', String(t.evictions)));
  $('tier-rows').replaceChildren(tier('memory', stats.memory, stats.memory_size), tier('disk', stats.disk, stats.disk_size));
  chart(pts);
}

// chart draws the last hour's requests per minute as stacked bars (SVG).
function chart(pts) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 600, H = 120, slots = 61;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  const max = Math.max(1, ...pts.map((p) => p.hits + p.misses + p.stale + p.revalidated));
  const bw = W / slots;
  pts.slice(-slots).forEach((p, i, all) => {
    const x = (slots - all.length + i) * bw;
    let y = H;
    for (const [cls, v] of [['hit', p.hits], ['stale', p.stale + p.revalidated], ['miss', p.misses]]) {
      if (!v) continue;
      const h = (v / max) * (H - 4);
      const r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', String(x + 0.5));
      r.setAttribute('width', String(Math.max(1, bw - 1)));
      r.setAttribute('y', String(y - h));
      r.setAttribute('height', String(h));
      r.setAttribute('class', cls);
      y -= h;
      svg.append(r);
    }
  });
  const title = document.createElementNS(NS, 'title');
  title.textContent = 'requests per minute, peak ' + max;
  svg.append(title);
  $('chart').replaceChildren(svg);
  $('chart-note').textContent = '— last ' + Math.max(0, pts.length - 1) + ' min and this one; peak ' + max + '/min';
}

async function purge(ev) {
  ev.preventDefault();
  const kind = $('purge-kind').value;
  const value = $('purge-value').value.trim();
  const body = { [kind]: [value] };
  const prop = $('purge-property').value.trim();
  if (prop) body.property = prop;
  if ($('purge-soft').checked) body.soft = true;
  $('purge-result').className = '';
  $('purge-result').textContent = 'purging…';
  try {
    const res = await api('/api/v1/cache/purge', { method: 'POST', body });
    $('purge-result').textContent = 'Purged ' + res.purged + ' object' + (res.purged === 1 ? '' : 's') + ' (' + kind.replace(/e?s$/, '') + ' ' + value + ')' + (res.note ? ': ' + res.note : '') + '.';
    $('purge-result').className = 'ok';
    refreshCache().catch(() => {});
  } catch (err) {
    if (err instanceof Unauthorized) { showError('app-error', err); return; }
    $('purge-result').textContent = 'Purge refused: ' + (err.message || err);
    $('purge-result').className = 'error';
  }
}

// ---- events ----

async function refreshEvents() {
  let got;
  try {
    got = (await api('/api/v1/events?since=' + lastSeq)).events || [];
  } catch (err) {
    showError('app-error', err);
    return;
  }
  if (!got.length && events.length) return;
  for (const e of got) lastSeq = Math.max(lastSeq, e.seq);
  events = events.concat(got).slice(-100);
  const items = events.slice().reverse().map((e) => {
    let subject = e.property || '';
    if (e.certificate && e.certificate.name) subject = e.certificate.name;
    return el('li', 'event ' + e.type.replace(/[^a-z]+/g, '-'),
      el('span', 'time', when(e.time)), el('span', 'type', e.type), el('span', 'subject', subject),
      el('span', 'node muted', e.node), e.detail ? el('div', 'event-detail', e.detail) : null);
  });
  if (!items.length) items.push(el('li', 'muted', 'No events yet.'));
  $('event-list').replaceChildren(...items);
}

// ---- fleet ----

async function refreshFleet() {
  const { fleet, nodes } = await api('/api/v1/fleet');
  $('fleet').hidden = !fleet;
  if (!fleet) return;
  $('fleet-rows').replaceChildren(...nodes.map((n) => el('tr', null, td('Node', el('strong', null, n.name)),
    td('State', el('span', 'badge ' + (n.alive ? 'up' : 'down'), n.alive ? 'alive' : 'gone')),
    td('Last seen', ago(n.seen_at)), td('Last renewal', n.last_renewal ? ago(n.last_renewal) : 'none'),
    td('Last purge', n.last_purge ? ago(n.last_purge) : 'none'), td('Version', n.version || '–'))));
}

document.addEventListener('DOMContentLoaded', () => {
  $('origin').textContent = location.host;
  $('login-form').addEventListener('submit', (ev) => { ev.preventDefault(); login($('token').value.trim()); });
  $('logout').addEventListener('click', () => logout(''));
  $('purge-form').addEventListener('submit', purge);
  $('purge-kind').addEventListener('change', () => {
    $('purge-value').placeholder = { urls: 'https://www.example.com/path', prefixes: 'https://www.example.com/assets/', tags: 'product-42' }[$('purge-kind').value];
  });
  const saved = sessionStorage.getItem(KEY);
  if (saved) login(saved);
});
