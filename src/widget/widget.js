/*! deflect widget 1.0.0 | Apache-2.0 | GET /widget.js of a deflect service.
 * Suggests help while a customer types a ticket and reports what they did with it.
 * <script src=".../widget.js" data-key="PUBLIC_KEY" data-subject="#subject"
 *   data-description="#description" data-form="#ticket-form"></script>
 * or Deflect.init({key, subject, description, form}). Never blocks the form. */
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
      announce: '{n} suggestions may answer your question.', announceOne: 'One suggestion may answer your question.'
    },
    de: {
      heading: 'Vielleicht hilft Ihnen das weiter',
      lesson: 'Lektion', article: 'Artikel', course: 'Kurs', video: 'Video', community: 'Community',
      minutes: '{n} Min.', newTab: '(öffnet in einem neuen Tab)',
      question: 'Hat das Ihr Problem gelöst?', yes: 'Ja, das hat geholfen', no: 'Nein',
      thanks: 'Danke für Ihre Rückmeldung.',
      resolved: 'Schön, dass das geholfen hat! Sie müssen diese Anfrage nicht mehr senden.',
      stillSubmit: 'Ich möchte meine Anfrage trotzdem senden',
      announce: '{n} Vorschläge könnten Ihre Frage beantworten.', announceOne: 'Ein Vorschlag könnte Ihre Frage beantworten.'
    }
  };
  // Colours, radius and focus ring are CSS custom properties (--deflect-*) with defaults,
  // so a page themes the widget from any ancestor, e.g. :root{--deflect-accent:#c00}.
  var CSS = [
    '.deflect{color:var(--deflect-text,inherit);margin:.75em 0}',
    '.deflect-panel,.deflect-resolved{border:1px solid var(--deflect-border,#d0d7de);border-radius:var(--deflect-radius,8px);',
    'padding:.75em 1em;background:var(--deflect-background,#fff)}',
    '.deflect-resolved{background:var(--deflect-success,#e9f7ef)}',
    '.deflect-heading,.deflect-resolved p{margin:0 0 .5em;font-weight:600}',
    '.deflect-list{list-style:none;margin:0;padding:0}',
    '.deflect-item{padding:.5em 0;border-top:1px solid var(--deflect-border,#d0d7de)}',
    '.deflect-item:first-child{border-top:0}',
    '.deflect-link{color:var(--deflect-accent,#0b57d0);font-weight:600}',
    '.deflect-meta,.deflect-snippet{color:var(--deflect-muted,#59636e);font-size:.875em}',
    '.deflect-meta{margin-left:.5em}.deflect-snippet{margin:.25em 0}',
    '.deflect mark{background:var(--deflect-mark,#fff1a8);color:inherit}',
    '.deflect-feedback{font-size:.875em;display:flex;flex-wrap:wrap;gap:.5em;align-items:center}',
    '.deflect button{font:inherit;cursor:pointer;border:1px solid var(--deflect-accent,#0b57d0);padding:.2em .7em;',
    'border-radius:var(--deflect-radius,8px);background:var(--deflect-background,#fff);color:var(--deflect-accent,#0b57d0)}',
    '.deflect a:focus-visible,.deflect button:focus-visible,.deflect [tabindex]:focus-visible{',
    'outline:3px solid var(--deflect-focus,#0b57d0);outline-offset:2px}',
    '.deflect-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}'
  ].join('');

  function find(target) {
    if (typeof target === 'string' && target) return document.querySelector(target);
    return target && target.nodeType === 1 ? target : null;
  }

  function randomId() {
    var bytes = window.crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fill(text, n) { return text.replace('{n}', n); }

  function httpUrl(url) { return /^https?:\/\//i.test(url || '') ? url : null; }

  // The snippet is HTML (escaped text, matches in <mark>): copied as text and <mark> only.
  function appendSnippet(html, parent) {
    var body = new window.DOMParser().parseFromString('<body>' + html, 'text/html').body;
    Array.prototype.forEach.call(body.childNodes, function (child) {
      var text = child.textContent || '';
      parent.appendChild(child.nodeName === 'MARK' ? make('mark', '', text) : document.createTextNode(text));
    });
  }

  /** One widget on one ticket form. */
  function Widget(options) {
    this.key = options.key;
    this.subject = find(options.subject);
    this.description = find(options.description);
    this.field = this.description || this.subject;
    this.form = find(options.form) || this.field.form || null;
    this.endpoint = options.endpoint.replace(/\/+$/, '');
    this.language = (options.locale || document.documentElement.lang || '').toLowerCase().split('-')[0];
    this.texts = TEXTS[this.language] || TEXTS.en;
    this.debounceMs = options.debounceMs || 400;
    this.maxDescriptionChars = options.maxDescriptionChars || 1000;
    this.limit = Math.min(options.limit || 3, 3);
    this.outboxKey = 'deflect:outbox:' + this.key;
    this.retryMs = 1000;
    this.clockOffsetMs = 0;
    this.beaconed = {};
    this.listeners = [];
    this.newSession();
    this.mount(find(options.mount));
    var fields = [this.subject, this.description];
    for (var i = 0; i < 2; i++) if (fields[i]) this.on(fields[i], 'input', this.typed);
    if (this.form) this.on(this.form, 'submit', this.submitted, true);
    this.on(window, 'pagehide', this.leaving);
    this.outbox = this.loadOutbox();
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

  proto.mount = function (mountPoint) {
    if (!document.getElementById('deflect-style')) {
      var style = make('style', '', CSS);
      style.id = 'deflect-style';
      (document.head || document.documentElement).appendChild(style);
    }
    var texts = this.texts, root = this.root = make('div', 'deflect');
    root.lang = this.language || 'en';
    this.live = make('div', 'deflect-hidden');
    this.live.setAttribute('role', 'status');
    this.live.setAttribute('aria-live', 'polite');
    this.panel = make('section', 'deflect-panel');
    var heading = make('p', 'deflect-heading', texts.heading);
    heading.id = 'deflect-heading-' + randomId().slice(0, 8);
    this.panel.setAttribute('aria-labelledby', heading.id);
    this.list = make('ul', 'deflect-list');
    this.panel.appendChild(heading);
    this.panel.appendChild(this.list);
    this.resolvedBox = make('div', 'deflect-resolved');
    this.resolvedBox.tabIndex = -1;
    this.resolvedBox.appendChild(make('p', '', texts.resolved));
    var stillSubmit = make('button', 'deflect-still-submit', texts.stillSubmit);
    stillSubmit.type = 'button';
    this.on(stillSubmit, 'click', this.continueToSubmit);
    this.resolvedBox.appendChild(stillSubmit);
    this.panel.hidden = this.resolvedBox.hidden = true;
    root.appendChild(this.live);
    root.appendChild(this.panel);
    root.appendChild(this.resolvedBox);
    this.on(root, 'keydown', this.navigate);
    if (mountPoint) mountPoint.appendChild(root);
    else this.field.parentNode.insertBefore(root, this.field.nextSibling);
  };

  /** The draft to search: subject plus the start of the description, or null if too short. */
  proto.draft = function () {
    function clean(field) { return field ? field.value.replace(/\s+/g, ' ').replace(/^ /, '') : ''; }
    var subject = clean(this.subject), description = clean(this.description).slice(0, this.maxDescriptionChars);
    var text = (subject + ' ' + description).trim();
    if (Array.from(text).length < (CJK.test(text) ? 2 : 3)) return null;
    return { subject: subject, description: description, query: subject + '\n' + description };
  };

  proto.typed = function (event) {
    this.lastField = event.target;
    var draft = this.draft();
    window.clearTimeout(this.timer);
    if (draft && draft.query === this.lastQuery) return;
    this.cancel();
    if (!draft) {
      this.lastQuery = null;
      return this.hide();
    }
    this.timer = window.setTimeout(this.search.bind(this), this.debounceMs);
  };

  /** Aborts the request in flight: a newer keystroke made its answer stale. */
  proto.cancel = function () {
    if (!this.inFlight) return;
    this.inFlight.abort();
    this.inFlight = this.lastQuery = null;
  };

  proto.search = function () {
    var draft = this.draft(), self = this;
    if (!draft || draft.query === this.lastQuery) return;
    this.lastQuery = draft.query;
    var controller = this.inFlight = new window.AbortController();
    var timeout = window.setTimeout(function () { controller.abort(); }, 5000);
    var body = { subject: draft.subject, description: draft.description, session_id: this.sessionId, limit: this.limit };
    if (TEXTS[this.language]) body.locale = this.language;
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
    }).then(function () { window.clearTimeout(timeout); });
  };

  proto.post = function (path, body, signal) {
    return window.fetch(this.endpoint + path, {
      method: 'POST', body: JSON.stringify(body), signal: signal, credentials: 'omit',
      headers: { 'Authorization': 'Bearer ' + this.key, 'Content-Type': 'application/json' }
    });
  };

  // deflect refuses events stamped over 5 minutes ahead of its clock: a customer's clock
  // that is more than a minute off is corrected by the server's Date header.
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
    }).slice(0, this.limit);
    if (!results.length) return this.hide();
    this.list.textContent = '';
    this.list.setAttribute('data-suggestion-id', answer.suggestion_id);
    for (var i = 0; i < results.length; i++) this.list.appendChild(this.item(results[i], answer.suggestion_id));
    this.panel.hidden = false;
    this.resolvedBox.hidden = true;
    this.live.textContent = results.length === 1 ? this.texts.announceOne : fill(this.texts.announce, results.length);
  };

  proto.item = function (result, suggestionId) {
    var texts = this.texts, item = make('li', 'deflect-item');
    item.setAttribute('data-lesson-id', result.id);
    var link = make('a', 'deflect-link', result.title);
    link.href = httpUrl(result.url);
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    link.appendChild(make('span', 'deflect-hidden', ' ' + texts.newTab));
    var opened = this.report.bind(this, 'lesson_opened', result.id, suggestionId);
    this.on(link, 'click', opened);
    this.on(link, 'auxclick', function (event) { if (event.button === 1) opened(); });
    item.appendChild(link);
    var meta = texts[result.kind] || result.kind;
    if (result.kind === 'lesson' && result.duration_seconds) {
      meta += ' · ' + fill(texts.minutes, Math.max(1, Math.round(result.duration_seconds / 60)));
    }
    item.appendChild(make('span', 'deflect-meta', meta));
    if (result.snippet) appendSnippet(result.snippet, item.appendChild(make('p', 'deflect-snippet')));
    var feedback = item.appendChild(make('div', 'deflect-feedback'));
    feedback.setAttribute('role', 'group');
    feedback.setAttribute('aria-label', texts.question);
    feedback.appendChild(make('span', '', texts.question));
    var yes = feedback.appendChild(make('button', 'deflect-yes', texts.yes));
    var no = feedback.appendChild(make('button', 'deflect-no', texts.no));
    yes.type = no.type = 'button';
    this.on(yes, 'click', function () { this.resolve(result.id, suggestionId); });
    this.on(no, 'click', function () {
      this.report('not_helpful', result.id, suggestionId);
      feedback.textContent = texts.thanks;
      feedback.tabIndex = -1;
      feedback.focus();
    });
    return item;
  };

  proto.resolve = function (lessonId, suggestionId) {
    // "Yes" marks the lesson helpful (the engagement the deflection is credited to), then
    // the problem resolved, a millisecond later so that the order is certain.
    var now = this.now();
    this.engaged = true;
    this.enqueue(this.event('helpful', lessonId, suggestionId, now));
    this.enqueue(this.event('resolved', lessonId, suggestionId, now + 1));
    this.flush();
    this.panel.hidden = true;
    this.resolvedBox.hidden = false;
    this.live.textContent = this.texts.resolved;
    this.resolvedBox.focus();
  };

  proto.continueToSubmit = function () {
    this.resolvedBox.hidden = true;
    var submit = this.form && this.form.querySelector('[type=submit]');
    (submit || this.lastField || this.field).focus();
  };

  /** Arrow keys move between suggestions; Escape closes them and returns to the field. */
  proto.navigate = function (event) {
    var links = Array.prototype.slice.call(this.list.querySelectorAll('.deflect-link'));
    var current = links.indexOf(document.activeElement);
    if (event.key === 'Escape') {
      this.hide();
      this.resolvedBox.hidden = true;
      (this.lastField || this.field).focus();
    } else if (/^Arrow(Down|Up)$/.test(event.key) && current >= 0) {
      links[(current + (event.key === 'ArrowDown' ? 1 : links.length - 1)) % links.length].focus();
    } else {
      return;
    }
    event.preventDefault();
  };

  proto.now = function () { return Math.round(Date.now() + this.clockOffsetMs); };

  proto.event = function (type, lessonId, suggestionId, ts) {
    var event = { event_id: randomId(), type: type, session_id: this.sessionId, ts: ts || this.now(), channel: 'widget' };
    if (lessonId) event.lesson_id = lessonId;
    if (suggestionId) event.suggestion_id = suggestionId;
    if (TEXTS[this.language]) event.locale = this.language;
    return event;
  };

  proto.report = function (type, lessonId, suggestionId) {
    if (type === 'lesson_opened') this.engaged = true;
    this.enqueue(this.event(type, lessonId, suggestionId));
    this.flush();
  };

  /** The form was submitted (called by the submit listener, or by frameworks). */
  proto.submitted = function () {
    if (this.answered) this.enqueue(this.event('ticket_submitted'));
    this.beacon();
    this.cancel();
    window.clearTimeout(this.timer);
    this.newSession();
  };

  proto.leaving = function () {
    if (this.engaged && !this.ended) {
      this.ended = true;
      this.enqueue(this.event('ticket_abandoned'));
    }
    this.beacon();
  };

  // The outbox holds events until deflect has answered for them. It lives in localStorage,
  // so the next page with the widget sends what a page left unsent (deflect unreachable,
  // or a beacon with unknown fate). Resends keep the event ids: nothing counts twice.
  proto.loadOutbox = function () {
    try {
      var oldest = Date.now() - DAY_MS;
      return JSON.parse(window.localStorage.getItem(this.outboxKey) || '[]').filter(function (event) {
        return event && event.ts > oldest;
      });
    } catch (error) {
      return [];
    }
  };

  proto.saveOutbox = function () {
    try {
      if (this.outbox.length) window.localStorage.setItem(this.outboxKey, JSON.stringify(this.outbox));
      else window.localStorage.removeItem(this.outboxKey);
    } catch (error) { /* storage blocked or full: the events stay in memory */ }
  };

  proto.enqueue = function (event) {
    this.outbox.push(event);
    this.outbox.splice(0, this.outbox.length - 500);
    this.saveOutbox();
  };

  proto.flush = function () {
    if (this.sending || !this.outbox.length) return;
    window.clearTimeout(this.retryTimer);
    var batch = this.outbox.slice(0, 100), self = this;
    this.sending = true;
    this.post('/v1/events', { events: batch }).then(function (response) {
      // Unreachable, 429 and 5xx are retried; any other answer is final for the batch.
      if (response.status === 429 || response.status >= 500) throw new Error('events answered ' + response.status);
      var sent = {};
      batch.forEach(function (event) { sent[event.event_id] = true; });
      self.outbox = self.outbox.filter(function (event) { return !sent[event.event_id]; });
      self.saveOutbox();
      self.retryMs = 1000;
    }).catch(function () {
      self.retryTimer = window.setTimeout(self.flush.bind(self), self.retryMs);
      self.retryMs = Math.min(self.retryMs * 2, 60000);
    }).then(function () {
      self.sending = false;
      if (self.outbox.length && self.retryMs === 1000) self.flush();
    });
  };

  /** Sends what this page has not beaconed yet with navigator.sendBeacon, which outlives the page. */
  proto.beacon = function () {
    var self = this, events = this.outbox.filter(function (event) { return !self.beaconed[event.event_id]; });
    if (!events.length || !navigator.sendBeacon) return;
    events = events.slice(-100);
    var body = new Blob([JSON.stringify({ key: this.key, events: events })], { type: 'text/plain;charset=UTF-8' });
    try {
      if (navigator.sendBeacon(this.endpoint + '/v1/events/beacon', body)) {
        events.forEach(function (event) { self.beaconed[event.event_id] = true; });
      }
    } catch (error) { /* the next page load sends them from the outbox */ }
  };

  proto.destroy = function () {
    this.cancel();
    window.clearTimeout(this.timer);
    window.clearTimeout(this.retryTimer);
    this.listeners.forEach(function (l) { l[0].removeEventListener(l[1], l[2], l[3]); });
    this.root.parentNode.removeChild(this.root);
  };

  var script = document.currentScript;
  var scriptOrigin = script && script.src ? new URL(script.src, window.location.href).origin : window.location.origin;

  /** Starts the widget on a ticket form; returns {submitted, destroy}. */
  function init(options) {
    var settings = { endpoint: scriptOrigin };
    for (var name in options) if (options[name]) settings[name] = options[name];
    if (!settings.key) throw new Error('Deflect.init needs a key');
    if (!find(settings.subject) && !find(settings.description)) throw new Error('Deflect.init needs a subject or description field');
    var widget = new Widget(settings);
    return { submitted: widget.submitted.bind(widget), destroy: widget.destroy.bind(widget) };
  }

  window.Deflect = { version: VERSION, init: init };

  if (script && script.getAttribute('data-key')) {
    var start = function () {
      var options = {};
      ['key', 'subject', 'description', 'form', 'mount', 'locale', 'endpoint'].forEach(function (name) {
        options[name] = script.getAttribute('data-' + name);
      });
      init(options);
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else start();
  }
})(window, document);
