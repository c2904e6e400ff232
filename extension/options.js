// The options page: the server's address and token, and the wording choices, in storage.local.
"use strict";

const api = globalThis.browser ?? globalThis.chrome;
const DEFAULTS = { server: "http://127.0.0.1:8000", token: "", names: false, maxChars: 125 };
const form = document.getElementById("settings");
const status = document.getElementById("status");

function show(message) {
  status.textContent = message;
}

async function load() {
  const stored = { ...DEFAULTS, ...(await api.storage.local.get(Object.keys(DEFAULTS))) };
  form.server.value = stored.server;
  form.token.value = stored.token;
  form.maxChars.value = String(stored.maxChars);
  form.names.checked = Boolean(stored.names);
}

function serverOrigin() {
  const url = new URL(form.server.value.trim());
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http");
  return url.origin;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  let origin;
  try {
    origin = serverOrigin();
  } catch {
    show("The server address must start with http:// or https://, e.g. http://127.0.0.1:8000");
    form.server.focus();
    return;
  }
  // Asked for within the click: browsers grant permissions only then. Chromium grants them at
  // install (host_permissions); Firefox asks the user here: the server's origin, and every site,
  // where the images to describe come from.
  const origins = [`${origin}/*`, "<all_urls>"];
  const granted = api.permissions?.request ? api.permissions.request({ origins }) : Promise.resolve(true);
  granted.catch(() => false).then(async (ok) => {
    if (!ok) {
      show(`Not saved: the extension needs permission to reach ${origin}.`);
      return;
    }
    const maxChars = Math.min(1000, Math.max(20, Math.round(Number(form.maxChars.value) || DEFAULTS.maxChars)));
    await api.storage.local.set({
      server: form.server.value.trim().replace(/\/+$/, ""), token: form.token.value.trim(), names: form.names.checked, maxChars,
    });
    form.maxChars.value = String(maxChars);
    show("Saved.");
  });
});

document.getElementById("check").addEventListener("click", async () => {
  show("Checking…");
  const reply = await api.runtime.sendMessage({ type: "check" });
  if (!reply?.ok) show(reply?.error ? `${reply.error}.` : "The server did not answer as expected.");
  else if (reply.status !== "ready") show(`The server answers, but is ${reply.status}.`);
  else if (reply.needsToken && !form.token.value.trim()) show("The server answers, and needs an access token.");
  else show("The server answers and is ready.");
});

load();
