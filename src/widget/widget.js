/*! deflect widget 1.0.0 | Apache-2.0 | suggests help while a customer types a ticket.
 * <script src=".../widget.js" data-key="KEY" data-subject="#s" data-description="#d"></script> */
(function (window, document) {
'use strict';
if (window.Deflect && window.Deflect.version) return;

var VERSION = '1.0.0';
var DAY_MS = 24 * 3600 * 1000;
var CJK = /^[\u1100-\u11ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uff9f]/;
var TEXTS = {
  en: {
    heading: 'These might solve your problem',
    lesson: 'Lesson', article: 'Article', course: 'Course', video: 'Video', community: 'Community',
    minutes: '{n} min', newTab: '(opens in a new tab)',
    question: 'Did this solve your problem?', yes: 'Yes, this solved it', no: 'No',
    thanks: 'Thanks for letting us know.',
    resolved: 'Great, glad that solved it! You do not need to send this request.',
    stillSubmit: 'I still want to submit my request',
    announce: 'Suggestions that may answer your question: {n}'
  },
  de: {
    heading: 'Vielleicht hilft Ihnen das weiter',
    lesson: 'Lektion', article: 'Artikel', course: 'Kurs',
    minutes: '{n} Min.', newTab: '(öffnet in einem neuen Tab)',
    question: 'Hat das Ihr Problem gelöst?', yes: 'Ja, das hat geholfen', no: 'Nein',
    thanks: 'Danke für Ihre Rückmeldung.',
    resolved: 'Schön, dass das geholfen hat! Sie müssen diese Anfrage nicht mehr senden.',
    stillSubmit: 'Ich möchte meine Anfrage trotzdem senden',
    announce: 'Vorschläge, die Ihre Frage beantworten könnten: {n}'
  }
};
// Themeable: --deflect-* properties (README) on any ancestor; .deflect maps them to short names.
var CSS = [
  '.deflect{--a:var(--deflect-accent,#0b57d0);--b:var(--deflect-border,#d0d7de);--r:var(--deflect-radius,8px);',
  '--g:var(--deflect-background,#fff);color:var(--deflect-text,inherit);margin:.75em 0}',
  '.deflect-panel,.deflect-resolved{border:1px solid var(--b);border-radius:var(--r);padding:.75em 1em;background:var(--g)}',
  '.deflect-resolved{background:var(--deflect-success,#e9f7ef)}',
  '.deflect-heading,.deflect-resolved p{margin:0 0 .5em;font-weight:600}',
  '.deflect-list{list-style:none;margin:0;padding:0}',
  '.deflect-item{padding:.5em 0;border-top:1px solid var(--b)}.deflect-item:first-child{border:0}',
  '.deflect-link{color:var(--a);font-weight:600}',
  '.deflect-meta,.deflect-snippet{color:var(--deflect-muted,#59636e);font-size:.875em}',
  '.deflect-meta{margin-left:.5em}.deflect-snippet{margin:.25em 0}',
  '.deflect mark{background:var(--deflect-mark,#fff1a8);color:inherit}',
  '.deflect-feedback{font-size:.875em;display:flex;flex-wrap:wrap;gap:.5em;align-items:center}',
  '.deflect button{font:inherit;cursor:pointer;border:1px solid var(--a);border-radius:var(--r);padding:.2em .7em;',
  'background:var(--g);color:var(--a)}',
  '.deflect :focus-visible{outline:3px solid var(--deflect-focus,var(--a));outline-offset:2px}',
  '.deflect-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}'
].join('');

// Fields are selectors (or elements) found when needed.
function find(target) {
  if (typeof target === 'string' && target) return document.querySelector(target);
  return target && target.nodeType === 1 ? target : null;
}

function matches(node, target) {
  if (!target || !node || !node.closest) return false;
  return typeof target === 'string' ? !!node.closest(target) : target.contains(node);
}

// A field's text: inputs and textareas, or rich-text editors (contenteditable).
function textOf(field) {
  return !field ? '' : field.isContentEditable ? field.innerText : field.value || '';
}

function randomId() {
  var bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
}

/** An element: `props` are properties, `text` or attributes (role, aria-*, data-*). */
function make(tag, props, children) {
  var node = document.createElement(tag);
  for (var name in props) {
    if (name === 'text') node.textContent = props[name];
    else if (/-|^role$/.test(name)) node.setAttribute(name, props[name]);
    else node[name] = props[name];
  }
  (children || []).forEach(function (child) { node.appendChild(child); });
  return node;
}

function button(name, text) { return make('button', { type: 'button', className: 'deflect-' + name, text: text }); }

/** The events of `list` not in `events` (by event id). */
function without(list, events) {
  var ids = events.map(function (e) { return e.event_id; });
  return list.filter(function (e) { return ids.indexOf(e.event_id) < 0; });
}

function fill(text, n) { return text.replace('{n}', n); }

function httpUrl(url) { return /^https?:\/\//i.test(url || '') ? url : null; }

// The snippet is HTML (escaped text, matches in <mark>): copied as text and <mark> only.
function appendSnippet(html, parent) {
  var body = new DOMParser().parseFromString('<body>' + html, 'text/html').body;
  Array.from(body.childNodes).forEach(function (child) {
    var text = child.textContent || '';
    parent.appendChild(child.nodeName === 'MARK' ? make('mark', { text: text }) : document.createTextNode(text));
  });
}

/** One widget on one ticket form. */
function Widget(options) {
  this.key = options.key;
  this.options = options;
  this.fields = {};
  this.endpoint = options.endpoint.replace(/\/+$/, '');
  this.language = (options.locale || document.documentElement.lang || '').toLowerCase().split('-')[0];
  this.texts = TEXTS[this.language] || TEXTS.en;
  // Only a language the widget speaks is sent.
  this.locale = TEXTS[this.language] ? this.language : undefined;
  this.debounceMs = options.debounceMs || 400;
  this.outboxKey = 'deflect:outbox:' + this.key;
  this.retryMs = 1000;
  this.clockOffsetMs = 0;
  this.beaconed = {};
  this.listeners = [];
  this.newSession();
  this.mount();
  this.on(document, 'input', this.typed, true);
  this.on(document, 'submit', this.submittedForm, true);
  this.on(window, 'pagehide', this.leaving);
  this.own = this.outbox = [];
  this.flush();
}
var proto = Widget.prototype;

proto.newSession = function () {
  this.sessionId = randomId();
  this.answered = this.engaged = this.ended = false;
  this.lastQuery = null;
};

proto.on = function (target, type, handler, capture) {
  var bound = handler.bind(this);
  target.addEventListener(type, bound, !!capture);
  this.listeners.push([target, type, bound, !!capture]);
};

proto.mount = function () {
  if (!document.getElementById('deflect-style')) {
    (document.head || document.documentElement).appendChild(make('style', { id: 'deflect-style', text: CSS }));
  }
  var texts = this.texts, headingId = 'deflect-heading-' + randomId().slice(0, 8);
  var stillSubmit = button('still-submit', texts.stillSubmit);
  this.on(stillSubmit, 'click', this.continueToSubmit);
  this.live = make('div', { className: 'deflect-hidden', role: 'status', 'aria-live': 'polite' });
  this.list = make('ul', { className: 'deflect-list' });
  this.panel = make('section', { className: 'deflect-panel', hidden: true, 'aria-labelledby': headingId },
    [make('p', { className: 'deflect-heading', id: headingId, text: texts.heading }), this.list]);
  this.resolvedBox = make('div', { className: 'deflect-resolved', hidden: true, tabIndex: -1 },
    [make('p', { text: texts.resolved }), stillSubmit]);
  this.root = make('div', { className: 'deflect', lang: this.language || 'en' }, [this.live, this.panel, this.resolvedBox]);
  this.on(this.root, 'keydown', this.navigate);
  this.place();
};

/** Puts the widget in `mount`, or after the description (or subject). */
proto.place = function () {
  if (this.root.isConnected) return;
  var mountPoint = find(this.options.mount), field = this.field('description') || this.field('subject');
  if (mountPoint) mountPoint.appendChild(this.root);
  else if (field) field.parentNode.insertBefore(this.root, field.nextSibling);
};

/** The field last typed in, else the first match. */
proto.field = function (name) {
  var typedIn = this.fields[name];
  return typedIn && typedIn.isConnected ? typedIn : find(this.options[name]);
};

/** The draft: subject plus the start of the description; null if too short. */
proto.draft = function () {
  function clean(field) { return textOf(field).replace(/\s+/g, ' ').replace(/^ /, ''); }
  var subject = clean(this.field('subject'));
  var description = clean(this.field('description')).slice(0, 1000);
  var text = (subject + ' ' + description).trim();
  if (Array.from(text).length < (CJK.test(text) ? 2 : 3)) return null;
  return { subject: subject, description: description, query: subject + '\n' + description };
};

proto.typed = function (event) {
  var name = matches(event.target, this.options.description) ? 'description'
    : matches(event.target, this.options.subject) ? 'subject' : null;
  if (!name) return;
  this.fields[name] = this.lastField = event.target;
  this.markSession();
  this.place();
  var draft = this.draft();
  clearTimeout(this.timer);
  if (draft && draft.query === this.lastQuery) return;
  this.cancel();
  if (!draft) {
    this.lastQuery = null;
    return this.hide();
  }
  this.timer = setTimeout(this.search.bind(this), this.debounceMs);
};

/** Stops the pending search and request: a newer keystroke made them stale. */
proto.cancel = function () {
  clearTimeout(this.timer);
  if (!this.inFlight) return;
  this.inFlight.abort();
  this.inFlight = this.lastQuery = null;
};

proto.search = function () {
  var draft = this.draft(), self = this;
  if (!draft || draft.query === this.lastQuery) return;
  this.lastQuery = draft.query;
  var controller = this.inFlight = new AbortController();
  var timeout = setTimeout(function () { controller.abort(); }, 5000);
  var body = { subject: draft.subject, description: draft.description, session_id: this.sessionId, limit: 3, locale: this.locale };
  if (this.options.customer) body.customer_id = this.options.customer;
  var sentAt = Date.now();
  this.post('/v1/suggest', body, controller.signal).then(function (response) {
    if (!response.ok) throw new Error('suggest answered ' + response.status);
    self.learnClock(response, sentAt);
    return response.json();
  }).then(function (answer) {
    if (self.inFlight !== controller) return;
    self.inFlight = null;
    self.answered = true;
    self.show(answer);
  }).catch(function () {
    if (self.inFlight !== controller) return;
    self.inFlight = self.lastQuery = null;
    self.hide();
  }).then(function () { clearTimeout(timeout); });
};

proto.post = function (path, body, signal) {
  return fetch(this.endpoint + path, {
    method: 'POST', body: JSON.stringify(body), signal: signal, credentials: 'omit',
    headers: { 'Authorization': 'Bearer ' + this.key, 'Content-Type': 'application/json' }
  });
};

// deflect refuses events stamped 5 minutes ahead: a clock a minute off is corrected.
proto.learnClock = function (response, sentAt) {
  var serverMs = Date.parse(response.headers.get('Date') || '');
  if (isNaN(serverMs)) return;
  var skewMs = serverMs - (sentAt + Date.now()) / 2;
  this.clockOffsetMs = Math.abs(skewMs) > 60000 ? skewMs : 0;
};

proto.hide = function () {
  this.panel.hidden = true;
  this.list.textContent = this.live.textContent = '';
};

proto.show = function (answer) {
  var results = (answer && !answer.abstained && answer.results || []).filter(function (result) {
    return httpUrl(result.url);
  }).slice(0, 3);
  if (!results.length) return this.hide();
  this.list.textContent = '';
  this.list.setAttribute('data-suggestion-id', answer.suggestion_id);
  for (var i = 0; i < results.length; i++) this.list.appendChild(this.item(results[i], answer.suggestion_id));
  this.panel.hidden = false;
  this.resolvedBox.hidden = true;
  this.live.textContent = fill(this.texts.announce, results.length);
};

proto.item = function (result, suggestionId) {
  var texts = this.texts, opened = this.report.bind(this, 'lesson_opened', result.id, suggestionId);
  var link = make('a', {
    className: 'deflect-link', href: httpUrl(result.url), target: '_blank', rel: 'noopener noreferrer', text: result.title
  }, [make('span', { className: 'deflect-hidden', text: ' ' + texts.newTab })]);
  this.on(link, 'click', opened);
  this.on(link, 'auxclick', function (event) { if (event.button === 1) opened(); });
  var meta = texts[result.kind] || TEXTS.en[result.kind] || result.kind;
  if (result.kind === 'lesson' && result.duration_seconds) {
    meta += ' · ' + fill(texts.minutes, Math.max(1, Math.round(result.duration_seconds / 60)));
  }
  var snippet = make('p', { className: 'deflect-snippet' });
  appendSnippet(result.snippet || '', snippet);
  var yes = button('yes', texts.yes), no = button('no', texts.no);
  var feedback = make('div', { className: 'deflect-feedback', role: 'group', 'aria-label': texts.question },
    [make('span', { text: texts.question }), yes, no]);
  this.on(yes, 'click', function () { this.resolve(result.id, suggestionId); });
  this.on(no, 'click', function () {
    this.report('not_helpful', result.id, suggestionId);
    feedback.textContent = texts.thanks;
    feedback.tabIndex = -1;
    feedback.focus();
  });
  return make('li', { className: 'deflect-item', 'data-lesson-id': result.id },
    [link, make('span', { className: 'deflect-meta', text: meta }), snippet, feedback]);
};

proto.resolve = function (lessonId, suggestionId) {
  // "Yes": helpful (the engagement credited), then resolved 1 ms later (a sure order).
  var now = this.now();
  this.engaged = true;
  this.enqueue(this.event('helpful', lessonId, suggestionId, now), this.event('resolved', lessonId, suggestionId, now + 1));
  this.flush();
  this.panel.hidden = true;
  this.resolvedBox.hidden = false;
  this.live.textContent = this.texts.resolved;
  this.resolvedBox.focus();
};

proto.continueToSubmit = function () {
  this.resolvedBox.hidden = true;
  var form = find(this.options.form) || this.lastField.closest('form');
  var submit = form && form.querySelector('[type=submit]');
  (submit || this.lastField).focus();
};

/** Arrows move between suggestions; Escape closes them. */
proto.navigate = function (event) {
  var links = Array.from(this.list.querySelectorAll('.deflect-link'));
  var current = links.indexOf(document.activeElement);
  if (event.key === 'Escape') {
    this.hide();
    this.resolvedBox.hidden = true;
    if (this.lastField) this.lastField.focus();
  } else if (/^Arrow(Down|Up)$/.test(event.key) && current >= 0) {
    links[(current + (event.key === 'ArrowDown' ? 1 : links.length - 1)) % links.length].focus();
  } else {
    return;
  }
  event.preventDefault();
};

proto.now = function () { return Math.round(Date.now() + this.clockOffsetMs); };

proto.event = function (type, lessonId, suggestionId, ts) {
  // JSON leaves undefined fields out.
  return { event_id: randomId(), type: type, session_id: this.sessionId, ts: ts || this.now(), channel: 'widget',
    lesson_id: lessonId, suggestion_id: suggestionId, locale: this.locale };
};

proto.report = function (type, lessonId, suggestionId) {
  if (type === 'lesson_opened') this.engaged = true;
  this.enqueue(this.event(type, lessonId, suggestionId));
  this.flush();
};

/** A submit: of `form`, else of the form holding the fields typed in. */
proto.submittedForm = function (event) {
  var form = this.options.form;
  if (form ? matches(event.target, form) : this.lastField && event.target.contains(this.lastField)) {
    this.markSession();
    this.submitted();
  }
};

// The session id goes into `sessionField` (hidden): the ticket and its webhook name it.
proto.markSession = function () {
  var field = find(this.options.sessionField);
  if (field) field.value = this.sessionId;
};

/** The ticket was submitted (the submit listener, or frameworks, call it). */
proto.submitted = function () {
  if (this.answered) this.enqueue(this.event('ticket_submitted'));
  this.beacon();
  this.cancel();
  this.newSession();
};

proto.leaving = function () {
  if (this.engaged && !this.ended) {
    this.ended = true;
    this.enqueue(this.event('ticket_abandoned'));
  }
  this.beacon();
};

// The outbox (localStorage) keeps events until deflect answered them: the next page sends
// them again, same ids. Tabs share it: a write re-reads it, drops what deflect `answered`
// and puts back this tab's unanswered events (`own`) if a race lost them.
proto.current = function () {
  var outbox = this.outbox, oldest = Date.now() - DAY_MS;
  try {
    outbox = JSON.parse(localStorage.getItem(this.outboxKey) || '[]').filter(function (e) { return e && e.ts > oldest; });
  } catch (error) { /* blocked: memory only */ }
  return outbox.concat(without(this.own, outbox));
};

proto.store = function (answered) {
  this.own = without(this.own, answered);
  var outbox = this.outbox = without(this.current(), answered).slice(-500);
  try {
    if (outbox.length) localStorage.setItem(this.outboxKey, JSON.stringify(outbox));
    else localStorage.removeItem(this.outboxKey);
  } catch (error) { /* blocked or full: kept in memory */ }
};

proto.enqueue = function () {
  this.own.push.apply(this.own, arguments);
  this.store([]);
};

proto.flush = function () {
  var batch = this.current().slice(0, 100), self = this;
  if (this.sending || !batch.length) return;
  clearTimeout(this.retryTimer);
  this.sending = true;
  this.post('/v1/events', { events: batch }).then(function (response) {
    // Unreachable, 429 and 5xx are retried; other answers are final.
    if (response.status === 429 || response.status >= 500) throw new Error('events answered ' + response.status);
    self.store(batch);
    self.retryMs = 1000;
  }).catch(function () {
    self.retryTimer = setTimeout(self.flush.bind(self), self.retryMs);
    self.retryMs = Math.min(self.retryMs * 2, 60000);
  }).then(function () {
    self.sending = false;
    if (self.outbox.length && self.retryMs === 1000) self.flush();
  });
};

/** Beacons what this page has not beaconed yet (sendBeacon outlives the page). */
proto.beacon = function () {
  var self = this, events = this.current().filter(function (e) { return !self.beaconed[e.event_id]; });
  if (!events.length || !navigator.sendBeacon) return;
  events = events.slice(-100);
  var body = new Blob([JSON.stringify({ key: this.key, events: events })], { type: 'text/plain;charset=UTF-8' });
  try {
    if (navigator.sendBeacon(this.endpoint + '/v1/events/beacon', body)) {
      events.forEach(function (e) { self.beaconed[e.event_id] = true; });
    }
  } catch (error) { /* the next page sends them */ }
};

proto.destroy = function () {
  this.cancel();
  clearTimeout(this.retryTimer);
  this.listeners.forEach(function (l) { l[0].removeEventListener(l[1], l[2], l[3]); });
  this.root.remove();
};

var script = document.currentScript;
var scriptOrigin = script && script.src ? new URL(script.src, window.location.href).origin : window.location.origin;

/** Starts the widget on a ticket form; returns {submitted, destroy}. */
function init(options) {
  var settings = { endpoint: scriptOrigin };
  for (var name in options) if (options[name]) settings[name] = options[name];
  if (!settings.key) throw new Error('Deflect.init needs a key');
  if (!settings.subject && !settings.description) throw new Error('Deflect.init needs a field');
  var widget = new Widget(settings);
  return { submitted: widget.submitted.bind(widget), destroy: widget.destroy.bind(widget) };
}

window.Deflect = { version: VERSION, init: init };

if (script && script.getAttribute('data-key')) {
  var start = function () {
    var options = {};
    ['key', 'subject', 'description', 'form', 'mount', 'locale', 'endpoint', 'customer', 'session-field'].forEach(function (name) {
      options[name.replace('-f', 'F')] = script.getAttribute('data-' + name);
    });
    init(options);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}
})(window, document);
