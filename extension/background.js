// describe-local alt text: the background (a service worker in Chromium, an event page in Firefox).
//
// The content script sends the URL of each image that needs alt text. This script fetches the
// image (here, not in the page: an extension with host permissions may fetch images of any
// origin), sends it to the user's own describe-local server (POST /api/alt-text, the URL and
// token set on the options page) and answers with the alt text. Nothing is sent anywhere
// else. Each image URL is described once per browser session (memory, and storage.session
// across restarts of the worker); failures are not kept, so they are tried again later.
"use strict";

const api = globalThis.browser ?? globalThis.chrome;

const DEFAULTS = Object.freeze({ server: "http://127.0.0.1:8000", token: "", names: false, maxChars: 125 });
const MAX_IMAGE_BYTES = 20 * 1024 * 1024; // the server's default upload limit
const MAX_PARALLEL = 2; // requests to the server at once (its queue holds 4 by default)
const RETRIES = 3; // for a busy server (503) or one still loading
const MAX_WAIT_S = 30;
const FETCH_TIMEOUT_MS = 60_000;

const memory = new Map(); // cache key -> Promise of a reply
let running = 0;
const waiting = [];

async function settings() {
  const stored = await api.storage.local.get(Object.keys(DEFAULTS));
  return { ...DEFAULTS, ...stored };
}

function endpoint(server, path) {
  return new URL(path, server.endsWith("/") ? server : `${server}/`).href;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function failure(error) {
  return { ok: false, error };
}

// Loopback and private addresses, and names that only mean something at home.
function isPrivateHost(hostname) {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".lan")
      || host.endsWith(".home") || host.endsWith(".internal") || !host.includes(".") && !host.includes(":")) {
    return true;
  }
  const v4 = host.match(/^(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31)
      || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  return host === "::1" || host.startsWith("fc") || host.startsWith("fd") || host.startsWith("fe80:");
}

// Whether this image may be described for this page. A page on the internet must not learn,
// through the alt text written into it, what an image on the user's own network shows.
function allowed(imageUrl, pageUrl, server) {
  let image;
  try {
    image = new URL(imageUrl);
  } catch {
    return "not a URL";
  }
  if (image.protocol === "data:") return null;
  if (image.protocol !== "http:" && image.protocol !== "https:") return "not a web image";
  if (image.origin === new URL(server).origin) return "an image of the describe-local server itself";
  let page = null;
  try {
    page = new URL(pageUrl);
  } catch {
    // no page: the options page or a test; the image's own rules apply
  }
  if (isPrivateHost(image.hostname) && page && !isPrivateHost(page.hostname)) {
    return "an image on a private network, in a public page";
  }
  return null;
}

// At most MAX_PARALLEL jobs at once; the rest wait their turn.
async function limited(job) {
  if (running >= MAX_PARALLEL) await new Promise((resolve) => waiting.push(resolve));
  running += 1;
  try {
    return await job();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

async function fetchWithTimeout(url, init) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    return await fetch(url, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

function fileName(url) {
  try {
    const name = new URL(url).pathname.split("/").pop();
    return name && name.length < 100 ? decodeURIComponent(name) : "image";
  } catch {
    return "image";
  }
}

// Fetch the image and ask the server for its alt text: {ok, alt, longDescription, partial} or {ok: false, error}.
async function askServer(imageUrl, config) {
  let image;
  try {
    // No cookies: only what anyone could fetch is described, never a signed-in page's private image.
    const response = await fetchWithTimeout(imageUrl, { credentials: "omit", cache: "force-cache", referrerPolicy: "no-referrer" });
    if (!response.ok) return failure(`the image could not be fetched (HTTP ${response.status})`);
    image = await response.blob();
  } catch {
    return failure("the image could not be fetched");
  }
  if (image.size > MAX_IMAGE_BYTES) return failure("the image is too large to describe");
  const headers = config.token ? { Authorization: `Bearer ${config.token}` } : {};
  for (let attempt = 0; ; attempt += 1) {
    const form = new FormData();
    form.append("photo", image, fileName(imageUrl));
    form.append("max_chars", String(config.maxChars));
    form.append("names", config.names ? "true" : "false");
    let response;
    try {
      response = await fetchWithTimeout(endpoint(config.server, "api/alt-text"), {
        method: "POST", body: form, headers, credentials: "omit", referrerPolicy: "no-referrer",
      });
    } catch {
      return failure(`describe-local is not reachable at ${config.server}`);
    }
    if ((response.status === 503 || response.status === 429) && attempt < RETRIES) {
      const wait = Number(response.headers.get("Retry-After")) || 2;
      await sleep(Math.min(wait, MAX_WAIT_S) * 1000);
      continue;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) return failure(body.detail || `describe-local answered HTTP ${response.status}`);
    return { ok: true, alt: body.alt || "", longDescription: body.long_description || "", partial: Boolean(body.partial) };
  }
}

// The alt text of one image URL, described once per session.
async function describeImage(imageUrl, pageUrl) {
  const config = await settings();
  const refused = allowed(imageUrl, pageUrl, config.server);
  if (refused) return failure(`not described: ${refused}`);
  const key = `alt|${config.server}|${config.names}|${config.maxChars}|${imageUrl}`;
  if (!memory.has(key)) {
    const job = (async () => {
      const kept = api.storage.session ? (await api.storage.session.get(key))[key] : undefined;
      if (kept) return kept;
      const reply = await limited(() => askServer(imageUrl, config));
      if (reply.ok && api.storage.session) await api.storage.session.set({ [key]: reply }).catch(() => {});
      return reply;
    })();
    memory.set(key, job);
    job.then((reply) => { if (!reply.ok) memory.delete(key); }, () => memory.delete(key));
  }
  return memory.get(key);
}

// Is the server there, and does it take our token? For the options page.
async function checkServer() {
  const config = await settings();
  try {
    const headers = config.token ? { Authorization: `Bearer ${config.token}` } : {};
    const response = await fetchWithTimeout(endpoint(config.server, "api/health"), { headers, credentials: "omit" });
    const body = await response.json();
    return { ok: response.ok, status: body.status, needsToken: Boolean(body.describe_needs_token) };
  } catch {
    return failure(`describe-local is not reachable at ${config.server}`);
  }
}

// The keyboard shortcut: the content script of the active tab describes its focused image.
async function describeFocusedInActiveTab() {
  let [tab] = await api.tabs.query({ active: true, lastFocusedWindow: true });
  if (!tab) [tab] = await api.tabs.query({ active: true });
  if (tab?.id !== undefined) await api.tabs.sendMessage(tab.id, { type: "describe-focused" });
}
globalThis.describeFocusedInActiveTab = describeFocusedInActiveTab;

api.runtime.onMessage.addListener((message, sender, reply) => {
  if (sender.id !== api.runtime.id) return false;
  if (message?.type === "describe" && typeof message.src === "string") {
    describeImage(message.src, sender.tab?.url ?? sender.url ?? "").then(reply, (error) => reply(failure(String(error))));
    return true; // the reply comes later
  }
  if (message?.type === "check") {
    checkServer().then(reply);
    return true;
  }
  return false;
});

api.commands?.onCommand.addListener((command) => {
  if (command === "describe-focused-image") describeFocusedInActiveTab().catch(() => {});
});

// New settings: forget what was described with the old ones.
api.storage.onChanged.addListener((_changes, area) => {
  if (area !== "local") return;
  memory.clear();
  api.storage.session?.clear().catch(() => {});
});
