// The options page: the server's address and describe token, and the wording choices, in
// storage.local. "Test the connection" tries what is typed, saved or not; an address without
// http:// gets it (and says so); whatever is wrong is said in the status line, never only in a
// browser bubble.
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

// The typed address as a server origin: {address, origin, note} or {error}. "127.0.0.1:8000"
// and "myserver:8000" get http:// in front; other schemes are refused with what to type.
function typedAddress() {
  let text = form.server.value.trim().replace(/\/+$/, "");
  if (!text) return { error: "Give the server's address, e.g. http://127.0.0.1:8000" };
  let note = "";
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text) && !/^(?:https?|ftp|file|data|javascript):/i.test(text)) {
    text = `http://${text}`;
    note = "http:// was added in front of the address. ";
  }
  let url;
  try {
    url = new URL(text);
  } catch {
    return { error: `"${form.server.value.trim()}" is not an address; type one like http://127.0.0.1:8000` };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { error: `The address must start with http:// or https:// (not ${url.protocol}//), e.g. http://127.0.0.1:8000` };
  }
  if (!url.hostname) return { error: "The address has no server name, e.g. http://127.0.0.1:8000" };
  return { address: text, origin: url.origin, note };
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const typed = typedAddress();
  if (typed.error) {
    show(typed.error);
    form.server.focus();
    return;
  }
  form.server.value = typed.address;
  // Asked for within the click: browsers grant permissions only then. Chromium grants them at
  // install (host_permissions); Firefox asks the user here: the server's origin, and every site,
  // where the images to describe come from.
  const origins = [`${typed.origin}/*`, "<all_urls>"];
  const granted = api.permissions?.request ? api.permissions.request({ origins }) : Promise.resolve(true);
  granted.catch(() => false).then(async (ok) => {
    if (!ok) {
      show(`Not saved: the extension needs permission to reach ${typed.origin}.`);
      return;
    }
    const maxChars = Math.min(1000, Math.max(20, Math.round(Number(form.maxChars.value) || DEFAULTS.maxChars)));
    await api.storage.local.set({ server: typed.address, token: form.token.value.trim(), names: form.names.checked, maxChars });
    form.maxChars.value = String(maxChars);
    show(`${typed.note}Saved.`);
  });
});

document.getElementById("check").addEventListener("click", async () => {
  const typed = typedAddress();
  if (typed.error) {
    show(typed.error);
    form.server.focus();
    return;
  }
  form.server.value = typed.address;
  show(`${typed.note}Checking ${typed.address}…`);
  const token = form.token.value.trim();
  const reply = await api.runtime.sendMessage({ type: "check", server: typed.address, token });
  let message;
  if (!reply?.ok) message = reply?.error ? `${reply.error}. Is describe-local serve running there?` : "The server did not answer as expected.";
  else if (reply.status !== "ready") message = `The server answers, but is ${reply.status}. Try again in a moment.`;
  else if (reply.token === "refused") message = "The server answers, but refused this token. Give the describe token "
    + "(\u201cAccess token for describing\u201d), not the admin token.";
  else if (reply.token === "admin") message = "The server answers and takes this token, but it is the admin token: "
    + "give the extension the describe token instead, so that it cannot change your gallery.";
  else if (reply.needsToken && !token) message = "The server answers, and needs a describe token: ask whoever runs it, "
    + "or see the help under the token field.";
  else message = "The server answers and is ready.";
  show(typed.note + message);
});

load();
