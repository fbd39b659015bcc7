// What the two listening pages share: calls to the listening API (the HttpOnly listener
// cookie plus Django's CSRF token), message templates, and the outbox that keeps answers
// given while the connection is down until the server has them.
window.Oddball = (function () {
  "use strict";

  // "{n} answers" with {n: 3}; an unknown {name} stays as it is, so a gap shows.
  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
  }

  function csrfToken() {
    const field = document.querySelector("[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function api(method, url, body) {
    return fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  // The server's reason for a refusal, or the status line when the body says nothing.
  async function detail(response) {
    try {
      const data = await response.json();
      return data.detail || JSON.stringify(data);
    } catch (e) {
      return response.status + " " + response.statusText;
    }
  }

  function viewport() {
    return window.matchMedia("(max-width: 599px)").matches ? "phone" : "desktop";
  }

  // Keys typed into a form field are not shortcuts.
  function typing(target) {
    const tag = target.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && target.type !== "range");
  }

  // Answers waiting to be sent, kept in localStorage under `key` so a reload keeps them.
  // Each is posted with how long it waited (`waited_ms`), so the server still takes an
  // answer given in time. The server's submit is idempotent: an entry leaves the outbox only
  // once the server has answered it for good, and a resend after a lost reply stores nothing
  // twice. `sent(data)` gets each accepted reply; `changed()` follows every change.
  class Outbox {
    constructor(key, url, { sent, changed }) {
      this.key = key;
      this.url = url;
      this.sent = sent;
      this.changed = changed;
      this.flushing = false;
    }

    entries() {
      try {
        return JSON.parse(localStorage.getItem(this.key) || "[]");
      } catch (e) {
        return [];
      }
    }

    save(entries) {
      localStorage.setItem(this.key, JSON.stringify(entries));
      this.changed();
    }

    add(body) {
      const entries = this.entries();
      entries.push({ id: body.assignment, body, queuedAt: Date.now() });
      this.save(entries);
    }

    async flush() {
      if (this.flushing) return;
      this.flushing = true;
      try {
        for (let entries = this.entries(); entries.length; entries = this.entries()) {
          const entry = entries[0];
          const body = Object.assign({}, entry.body, { waited_ms: Date.now() - entry.queuedAt });
          let response;
          try {
            response = await api("POST", this.url, body);
          } catch (e) {
            break; // still offline
          }
          if (response.status >= 500 || response.status === 429) break;
          if (response.ok) {
            this.sent(await response.json());
          } else {
            // Refused for good (expired for a day, skipped, not ours): resending cannot help.
            console.warn("answer refused", response.status, await detail(response));
          }
          this.save(this.entries().filter((e) => e.id !== entry.id));
        }
      } finally {
        this.flushing = false;
        this.changed();
      }
    }
  }

  return { fmt, api, detail, viewport, typing, Outbox };
})();
