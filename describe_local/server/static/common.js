// Shared by the pages: announcements, errors, API errors, the service worker.
"use strict";

const dl = (() => {
  const statusBox = () => document.getElementById("status");
  const errorBox = () => document.getElementById("error");

  // Clear first, then set on the next frame, so that a screen reader
  // announces a message even when it repeats the previous one. `parts` is a
  // string, or a list of strings and nodes (e.g. a span with its own lang).
  // Keep it short: the listener cannot pause a live region.
  function announce(parts) {
    const box = statusBox();
    box.textContent = "";
    requestAnimationFrame(() => { box.replaceChildren(...[].concat(parts)); });
  }

  // Text in another language than the page, marked so that a screen reader
  // pronounces it in that language.
  function inLanguage(text, lang) {
    const span = document.createElement("span");
    span.textContent = text;
    if (lang) span.lang = lang;
    return span;
  }

  function showError(text) {
    const box = errorBox();
    box.textContent = "";
    requestAnimationFrame(() => { box.textContent = plainWords(text); });
  }

  function clearMessages() {
    statusBox().textContent = "";
    errorBox().textContent = "";
  }

  // A server message as the listener should read it: without the commands
  // meant for whoever runs the server ("to fix it: describe-local ...",
  // "install one with `...`"), which a phone user can do nothing with.
  function plainWords(text) {
    let plain = String(text || "").replace(/\s*\((?:to fix it|e\.g\.)[^)]*\)/gi, "");
    plain = plain.split(/;\s+/).filter((clause) => !/`|describe-local |--[a-z]/.test(clause)).join("; ");
    return plain.trim();
  }

  // How many sentences `text` has, for a short announcement.
  function sentenceCount(text, lang) {
    if (typeof Intl !== "undefined" && Intl.Segmenter) {
      const segments = new Intl.Segmenter(lang || "en", { granularity: "sentence" }).segment(text);
      return Array.from(segments).filter((s) => s.segment.trim()).length;
    }
    return (text.match(/[.!?](\s|$)/g) || []).length || 1;
  }

  // A sentence for the user from a failed response: the server's own message,
  // plus when to retry when it is busy.
  async function errorMessage(response) {
    let detail = "";
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? plainWords(body.detail) : "";
    } catch (_) { /* not JSON */ }
    if (!detail) detail = `The server answered ${response.status} ${response.statusText}.`;
    detail = detail.charAt(0).toUpperCase() + detail.slice(1);
    if (!/[.!?]$/.test(detail)) detail += ".";
    const retry = response.headers.get("Retry-After");
    if (response.status === 503 && retry) {
      detail += ` Try again in ${retry} second${retry === "1" ? "" : "s"}.`;
    }
    return detail;
  }

  function authHeaders(token) {
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  // The describe page's access token, if this server asks for one.
  function token() {
    const input = document.getElementById("token");
    return input ? input.value.trim() : "";
  }

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", () => {
      navigator.serviceWorker.register("/sw.js").catch(() => { /* the page works without it */ });
    });
  }

  return { announce, inLanguage, showError, clearMessages, plainWords, sentenceCount, errorMessage, authHeaders, token };
})();
