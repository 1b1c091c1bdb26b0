// Charter's dashboard: the little the server cannot do for a page.
// - every htmx request and charter.api() call carries the CSRF token (the body's hx-headers);
// - an error answer is shown in #flash in words, never swallowed;
// - live: an element with data-live="<table pattern>[ <pattern>...]" refreshes (htmx
//   trigger "charter:refresh") when deltas of those tables arrive on /v1/events.
(function () {
  "use strict";
  const csrf = () => document.body.dataset.csrf || "";

  function flash(html) {
    const box = document.getElementById("flash");
    if (box) { box.innerHTML = html; box.scrollIntoView({ block: "nearest" }); }
  }
  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  // JSON API calls from a page: same origin, the session cookie, the CSRF header.
  async function api(method, path, body) {
    const init = { method, headers: { "Accept": "application/json", "X-CSRF-Token": csrf() }, credentials: "same-origin" };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const message = (data && data.error && data.error.message) || (response.status + " " + response.statusText);
      const error = new Error(message); error.status = response.status; error.data = data; throw error;
    }
    return data;
  }

  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const type = xhr.getResponseHeader("Content-Type") || "";
    if (type.startsWith("text/html")) { flash(xhr.responseText); }
    else { flash('<div class="error" role="alert">' + escapeHtml(xhr.status + ": " + (xhr.responseText || xhr.statusText)) + "</div>"); }
  });
  document.addEventListener("htmx:sendError", () => {
    flash('<div class="error" role="alert">Charter did not answer: check that the server is running, then retry.</div>');
  });
  document.addEventListener("htmx:beforeRequest", () => { const box = document.getElementById("flash"); if (box) box.innerHTML = ""; });

  // Live updates: one EventSource per page for every pattern its elements ask for.
  function startLive() {
    const live = () => Array.from(document.querySelectorAll("[data-live]"));
    const patternsOf = (el) => el.dataset.live.split(/\s+/).filter(Boolean);
    if (!live().length || !window.EventSource) return;
    // the patterns of the page as loaded: a swap may replace a live element by a new one
    // (so the elements are looked up at each delta), not change what the page watches
    const patterns = new Set();
    live().forEach((el) => patternsOf(el).forEach((p) => patterns.add(p)));
    const query = Array.from(patterns).map((p) => "table=" + encodeURIComponent(p)).join("&");
    const indicator = document.getElementById("live");
    let source = null, timer = null, retry = 1000;
    const stale = new Set();
    const matches = (pattern, table) => new RegExp("^" + pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$").test(table);
    function refresh(table) {
      patterns.forEach((p) => { if (matches(p, table)) stale.add(p); });
      clearTimeout(timer);
      timer = setTimeout(() => {  // many deltas in a burst: one refresh
        live().forEach((el) => { if (patternsOf(el).some((p) => stale.has(p))) htmx.trigger(el, "charter:refresh"); });
        stale.clear();
      }, 250);
    }
    function connect() {
      source = new EventSource("/v1/events?rows=false&" + query);
      source.addEventListener("ready", () => { retry = 1000; if (indicator) { indicator.className = "live on"; indicator.title = "Live: updates as the data changes"; } document.body.dataset.live = "ready"; });
      source.addEventListener("delta", (e) => { try { refresh(JSON.parse(e.data).table); } catch (err) { /* a malformed event changes nothing */ } });
      source.addEventListener("overflow", () => { source.close(); live().forEach((el) => htmx.trigger(el, "charter:refresh")); connect(); });
      source.onerror = () => {
        if (indicator) { indicator.className = "live off"; indicator.title = "Live updates lost: reconnecting"; }
        document.body.dataset.live = "lost";
        source.close(); setTimeout(connect, retry); retry = Math.min(retry * 2, 30000);
      };
    }
    connect();
    window.addEventListener("beforeunload", () => source && source.close());
  }

  // A button or form with data-confirm="question" asks before it submits.
  document.addEventListener("submit", (event) => {
    const source = event.submitter && event.submitter.dataset.confirm ? event.submitter : event.target;
    const question = source.dataset && source.dataset.confirm;
    if (question && !window.confirm(question)) { event.preventDefault(); }
  }, true);

  window.charter = { api, flash, escapeHtml };
  document.addEventListener("DOMContentLoaded", startLive);
})();
