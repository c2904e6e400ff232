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

  // `plain: false` keeps a page's own message whole, commands included (plainWords is for the
  // server's messages).
  function showError(text, { plain = true } = {}) {
    const box = errorBox();
    box.textContent = "";
    requestAnimationFrame(() => { box.textContent = plain ? plainWords(text) : String(text); });
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

  // A server's message (a failed response's or a streamed description's `detail`) as one
  // sentence for the listener, or "" where there is none.
  function asSentence(detail) {
    let text = typeof detail === "string" ? plainWords(detail) : "";
    if (!text) return "";
    text = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?]$/.test(text) ? text : `${text}.`;
  }

  // A sentence for the user from a failed response: the server's own message,
  // plus when to retry when it is busy.
  async function errorMessage(response) {
    let detail = "";
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : "";
    } catch (_) { /* not JSON */ }
    detail = asSentence(detail) || `The server answered ${response.status} ${response.statusText}.`;
    const retry = response.headers.get("Retry-After");
    if (response.status === 503 && retry) {
      detail += ` Try again in ${retry} second${retry === "1" ? "" : "s"}.`;
    }
    return detail;
  }

  // Language names, never codes: the server's own list first (/api/languages), then the browser's.
  const languageNames = new Map();
  function languageName(code) {
    if (!code) return "";
    if (languageNames.has(code)) return languageNames.get(code);
    try {
      const name = new Intl.DisplayNames(["en"], { type: "language" }).of(code);
      if (name && name !== code) return name;
    } catch (_) { /* no Intl.DisplayNames, or not a language tag */ }
    return code;
  }

  // What the server says, in English, in place of the findings of a stage that is off
  // (not installed); these are say/compose.py's sentences for an "off" stage.
  const OFF_SENTENCES = {
    caption: "I can't describe the scene because no caption model is installed.",
    faces: "I can't check for people because face recognition is not installed.",
    text: "I can't read text because text reading is not installed.",
  };

  // Each stage's state, "ok", "off", "failed" or "timed_out", from a /api/describe answer:
  // `stages` decides. A problem in `errors` that `stages` does not hold (speech, say) failed;
  // its words are never read for a state.
  function stageStates(data) {
    const states = {};
    const stages = data && data.stages && typeof data.stages === "object" ? data.stages : null;
    if (stages) {
      for (const [stage, info] of Object.entries(stages)) {
        states[stage] = (info && info.status) || "ok";
      }
    }
    for (const stage of Object.keys((data && data.errors) || {})) {
      if (!(stage in states)) states[stage] = "failed";
    }
    return states;
  }

  // The description as the page shows it: without the sentences that only say a stage is off
  // (they are in Details instead), unless nothing else would be left. The spoken MP3 is the
  // server's and still says them.
  function foundText(text, states) {
    let found = String(text || "");
    for (const [stage, state] of Object.entries(states || {})) {
      const sentence = OFF_SENTENCES[stage];
      if (state !== "off" || !sentence || !found.includes(sentence)) continue;
      const rest = found.replace(sentence, "").replace(/^\s+/, "").replace(/\s{2,}/g, " ").trim();
      if (rest) found = rest;
    }
    return found;
  }

  // "10:42", in the phone's own way of writing the time.
  function clock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // Copies `text`; false where neither the clipboard API nor the old way works.
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      // No clipboard API (plain HTTP) or no permission: the old way.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.append(area);
      area.select();
      const done = document.execCommand("copy");
      area.remove();
      return done;
    }
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

  return {
    announce, inLanguage, showError, clearMessages, plainWords, asSentence, sentenceCount, errorMessage, authHeaders, token,
    languageNames, languageName, stageStates, foundText, clock, copyText,
  };
})();
