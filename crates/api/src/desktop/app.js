// ivrpay agent desktop. Renders the service's masked views only (bullets, brand, last
// four, expiry): no card digit beyond the last four ever reaches this page. Text goes into
// the DOM with textContent, never as HTML.
'use strict';

const FIELDS = [
  ['payment-card-number', 'Card number'],
  ['expiration-date', 'Expiry'],
  ['security-code', 'Security code'],
  ['postal-code', 'Postal code'],
];
const ERRORS = {
  'invalid-card-number': 'Invalid card number',
  'invalid-card-type': 'Card type not accepted',
  'invalid-date': 'Invalid or past expiry date',
  'invalid-security-code': 'Invalid security code',
  'invalid-postal-code': 'Invalid postal code',
  'input-timeout': 'Customer stopped typing',
  'invalid-card-number-security-code-capture-sequence': 'Ask for the card number first',
  'too-many-failed-attempts': 'Too many failed attempts',
};
const BRANDS = { visa: 'Visa', mastercard: 'Mastercard', amex: 'American Express', discover: 'Discover' };
const STATUS = {
  open: 'Capturing', processing: 'Processing', succeeded: 'Succeeded', declined: 'Declined',
  failed: 'Failed', cancelled: 'Cancelled',
};

const state = {
  key: null,
  me: null,
  calls: [],
  callId: null,
  payment: null,
  ws: null,
  lastId: 0,
  retryMs: 500,
  loading: false,
  reload: false,
  lastBeat: 0,
};

const $ = (id) => document.getElementById(id);

function setText(el, text) {
  el.textContent = text == null ? '' : String(text);
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (method === 'POST') headers['Idempotency-Key'] = newKey();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

// ---- sign in ------------------------------------------------------------------------

async function signIn(key) {
  state.key = key;
  const me = await api('GET', '/v1/me');
  if (me.scope !== 'agent') throw new Error('This page needs an agent key (ivrpay keys create --scope agent --agent ID).');
  state.me = me;
  sessionStorage.setItem('ivrpay.key', key);
  setText($('agent-name'), me.agent);
  $('signin').hidden = true;
  $('who').hidden = false;
  $('desk').hidden = false;
  await loadCalls();
  connect();
  // The sign-in form is gone: focus the desk (the first action, or the page itself).
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  $('take-payment').focus();
}

function signOut() {
  sessionStorage.removeItem('ivrpay.key');
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  window.location.reload();
}

// ---- calls --------------------------------------------------------------------------

async function loadCalls() {
  const page = await api('GET', '/v1/calls?state=active');
  state.calls = page.data;
  if (!state.calls.some((c) => c.id === state.callId)) {
    state.callId = state.calls.length ? state.calls[0].id : null;
  }
  renderCall();
  const call = currentCall();
  if (call && call.payment_id && (!state.payment || state.payment.id !== call.payment_id)) {
    await loadPayment(call.payment_id);
  }
}

function currentCall() {
  return state.calls.find((c) => c.id === state.callId) || null;
}

function renderCall() {
  const call = currentCall();
  $('no-call').hidden = !!call;
  $('call').hidden = !call;
  if (call) {
    setText($('call-caller'), call.caller || 'Unknown number');
    setText($('call-since'), new Date(call.answered_at || call.started_at).toLocaleTimeString());
    setText($('call-id'), call.id);
  }
  const choice = $('call-choice');
  const several = state.calls.length > 1;
  choice.hidden = !several;
  $('call-choice-label').hidden = !several;
  choice.replaceChildren(...state.calls.map((c) => {
    const option = document.createElement('option');
    option.value = c.id;
    option.selected = c.id === state.callId;
    setText(option, `${c.caller || 'Unknown'} · ${new Date(c.started_at).toLocaleTimeString()}`);
    return option;
  }));
  updateButtons();
}

// ---- payments -----------------------------------------------------------------------

function paymentOpen() {
  return state.payment && (state.payment.status === 'open' || state.payment.status === 'processing');
}

async function loadPayment(id) {
  state.payment = await api('GET', `/v1/payments/${encodeURIComponent(id)}`);
  renderPayment();
}

// Feed events trigger a fresh view; one request at a time, the last event always wins.
async function refreshPayment() {
  if (!state.payment) return;
  if (state.loading) { state.reload = true; return; }
  state.loading = true;
  try {
    do {
      state.reload = false;
      await loadPayment(state.payment.id);
    } while (state.reload);
  } catch (e) {
    showError('payment-error', e);
  } finally {
    state.loading = false;
  }
}

function fieldRow(name, label, index, view, p) {
  const tr = document.createElement('tr');
  tr.dataset.field = name;
  const th = document.createElement('th');
  th.scope = 'row';
  setText(th, label);
  const value = document.createElement('td');
  value.className = 'masked mono';
  let text = view ? view.masked : '';
  if (name === 'payment-card-number' && p.brand) text = `${text}${text ? '  ' : ''}${BRANDS[p.brand] || p.brand}`;
  setText(value, text || '—');
  const status = document.createElement('td');
  status.className = 'state';
  let label2 = 'Waiting';
  let cls = 'waiting';
  if (view && view.error) { label2 = `${ERRORS[view.error] || view.error}`; cls = 'invalid'; }
  else if (view && view.complete) { label2 = 'Valid'; cls = 'valid'; }
  else if (p.capturing === name) { label2 = view && view.masked ? 'Customer typing…' : 'Customer keying now'; cls = 'typing'; }
  else if (!p.required.includes(name) && !view) { label2 = '—'; }
  if (view && view.attempt > 1) label2 += ` (attempt ${view.attempt})`;
  setText(status, label2);
  status.classList.add(cls);
  tr.classList.add(cls);
  const action = document.createElement('td');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'reask';
  button.disabled = p.status !== 'open';
  button.append(`Ask again `);
  const kbd = document.createElement('kbd');
  setText(kbd, String(index + 1));
  button.append(kbd);
  button.setAttribute('aria-label', `Ask the customer for the ${label.toLowerCase()} again`);
  button.addEventListener('click', () => reask(name));
  action.append(button);
  tr.append(th, value, status, action);
  return tr;
}

function renderPayment() {
  const p = state.payment;
  $('payment').hidden = !p;
  if (!p) { updateButtons(); return; }
  $('new-payment').hidden = true;
  const badge = $('status');
  setText(badge, STATUS[p.status] || p.status);
  badge.className = `status ${p.status}`;
  const ref = p.customer_ref ? ` · ref ${p.customer_ref}` : '';
  setText($('summary'), `${p.amount} ${p.currency}${ref}`);
  const capturing = FIELDS.find(([n]) => n === p.capturing);
  let line = '';
  if (p.status === 'open') {
    line = capturing ? `Customer is keying: ${capturing[1]}` : (p.required.length ? '' : 'All details captured: ready to complete');
  } else if (p.status === 'processing') {
    line = 'Sending to the payment gateway…';
  }
  setText($('capturing'), line);
  const shown = FIELDS.filter(([n]) => p.required.includes(n) || p.fields.some((f) => f.field === n) || p.capturing === n);
  const rows = shown.map(([n, label]) => fieldRow(n, label, FIELDS.findIndex(([m]) => m === n), p.fields.find((f) => f.field === n), p));
  $('fields').tBodies[0].replaceChildren(...rows);
  const result = $('result');
  result.className = `result ${p.status}`;
  if (p.status === 'succeeded') {
    const card = p.last4 ? ` · ${BRANDS[p.brand] || p.brand || 'Card'} •••• ${p.last4}` : '';
    setText(result, `Payment succeeded${card}${p.gateway_ref ? ` · ${p.gateway_ref}` : ''}`);
  } else if (p.status === 'declined') {
    setText(result, `Declined${p.decline_code ? ` (${p.decline_code})` : ''}: ask for another card`);
  } else if (p.status === 'failed') {
    setText(result, `Payment failed${p.error ? `: ${p.error}` : ''}`);
  } else if (p.status === 'cancelled') {
    setText(result, 'Payment cancelled');
  } else {
    setText(result, p.error || '');
  }
  updateButtons();
}

function updateButtons() {
  const p = state.payment;
  $('take-payment').disabled = !currentCall() || paymentOpen();
  $('complete').disabled = !p || p.status !== 'open' || p.required.length > 0;
  $('cancel').disabled = !p || !(p.status === 'open' || (p.status === 'processing' && p.error));
}

function showError(id, e) {
  setText($(id), e ? e.message : '');
}

function openPaymentForm() {
  if ($('take-payment').disabled) return;
  $('new-payment').hidden = false;
  showError('payment-form-error', null);
  $('amount').focus();
}

async function startPayment(event) {
  event.preventDefault();
  const amount = $('amount').value.trim();
  if (!/^\d+(\.\d{1,3})?$/.test(amount)) {
    setText($('payment-form-error'), 'Enter the amount as a number, like 12.50');
    $('amount').focus();
    return;
  }
  const call = currentCall();
  if (!call) return;
  const body = { amount, currency: $('currency').value };
  const reference = $('reference').value.trim();
  if (reference) body.customer_ref = reference;
  try {
    state.payment = await api('POST', `/v1/calls/${encodeURIComponent(call.id)}/payments`, body);
    showError('payment-error', null);
    renderPayment();
    $('payment').focus();
  } catch (e) {
    showError('payment-form-error', e);
  }
}

async function command(body) {
  if (!state.payment) return;
  showError('payment-error', null);
  try {
    state.payment = await api('POST', `/v1/payments/${encodeURIComponent(state.payment.id)}`, body);
    renderPayment();
  } catch (e) {
    showError('payment-error', e);
    refreshPayment();
  }
}

function reask(field) {
  if (state.payment && state.payment.status === 'open') command({ capture: field });
}

function complete() {
  if (!$('complete').disabled) command({ status: 'complete' });
}

function cancel() {
  if (!$('cancel').disabled) command({ status: 'cancel' });
}

// ---- the feed -----------------------------------------------------------------------

function connect() {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  const since = state.lastId > 0 ? `&since=${state.lastId}` : '';
  const url = `${scheme}://${window.location.host}/v1/feed?agent=${encodeURIComponent(state.me.agent)}${since}`;
  const ws = new WebSocket(url, ['ivrpay.feed.v1', `bearer.${state.key}`]);
  state.ws = ws;
  ws.onopen = () => {
    state.retryMs = 500;
    setLink('Live', 'live');
    // Whatever happened while disconnected is in the feed; the lists are re-read too.
    loadCalls().catch(() => {});
  };
  ws.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (_) { return; }
    if (event.type === 'heartbeat') { setLink('Live', 'live'); return; }
    if (typeof event.id === 'number' && event.id > state.lastId) state.lastId = event.id;
    onEvent(event);
  };
  ws.onclose = () => {
    setLink('Reconnecting…', 'down');
    window.setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 10000);
  };
}

function setLink(text, cls) {
  const link = $('link');
  setText(link, text);
  link.className = `link ${cls}`;
}

function concerns(event, payment) {
  const d = event.data || {};
  return payment && (d.payment_id === payment.id || d.id === payment.id || d.session_id === payment.id);
}

const DESCRIBE = {
  'call.started': 'Call arrived',
  'call.answered': 'Call answered',
  'call.ended': 'Call ended',
  'payment.created': 'Payment opened',
  'capture.started': 'Asking for',
  'capture.progress': 'Key pressed',
  'capture.field_completed': 'Captured',
  'capture.field_invalid': 'Invalid',
  'payment.processing': 'Sent to the gateway',
  'payment.succeeded': 'Payment succeeded',
  'payment.declined': 'Payment declined',
  'payment.failed': 'Payment failed',
  'payment.cancelled': 'Payment cancelled',
  'payment.tokenized': 'Card tokenized',
  'refund.succeeded': 'Refunded',
};

function log(event) {
  const d = event.data || {};
  const field = FIELDS.find(([n]) => n === d.field);
  let text = DESCRIBE[event.type] || event.type;
  if (d.ready) text = 'All details captured';
  if (field) text += `: ${field[1]}`;
  if (d.error) text += ` (${ERRORS[d.error] || d.error})`;
  const li = document.createElement('li');
  const time = document.createElement('time');
  setText(time, new Date(event.timestamp).toLocaleTimeString());
  li.append(time, ` ${text}`);
  const list = $('log');
  list.prepend(li);
  while (list.children.length > 40) list.lastElementChild.remove();
}

function onEvent(event) {
  log(event);
  if (event.type.startsWith('call.')) loadCalls().catch((e) => showError('payment-error', e));
  if (concerns(event, state.payment)) refreshPayment();
}

// ---- keyboard -----------------------------------------------------------------------

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === 'Escape') {
    if (!$('new-payment').hidden) { $('new-payment').hidden = true; $('take-payment').focus(); }
    return;
  }
  const tag = event.target && event.target.tagName;
  if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || $('desk').hidden) return;
  const key = event.key.toLowerCase();
  if (key === 'p') { event.preventDefault(); openPaymentForm(); }
  else if (key === 'c') { event.preventDefault(); complete(); }
  else if (key === 'x') { event.preventDefault(); cancel(); }
  else if (/^[1-4]$/.test(key)) { event.preventDefault(); reask(FIELDS[Number(key) - 1][0]); }
}

// ---- start --------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('payment').tabIndex = -1;
  $('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    showError('signin-error', null);
    try {
      await signIn($('key').value.trim());
      $('key').value = '';
    } catch (e) {
      state.key = null;
      setText($('signin-error'), e.status === 401 ? 'That key is not valid.' : e.message);
    }
  });
  $('sign-out').addEventListener('click', signOut);
  $('take-payment').addEventListener('click', openPaymentForm);
  $('new-back').addEventListener('click', () => { $('new-payment').hidden = true; $('take-payment').focus(); });
  $('payment-form').addEventListener('submit', startPayment);
  $('complete').addEventListener('click', complete);
  $('cancel').addEventListener('click', cancel);
  $('call-choice').addEventListener('change', (event) => {
    state.callId = event.target.value;
    state.payment = null;
    renderCall();
    renderPayment();
    loadCalls().catch(() => {});
  });
  document.addEventListener('keydown', onKey);
  const saved = sessionStorage.getItem('ivrpay.key');
  if (saved) signIn(saved).catch(() => sessionStorage.removeItem('ivrpay.key'));
  else $('key').focus();
});
