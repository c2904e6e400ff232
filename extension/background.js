// describe-local alt text: the background (a service worker in Chromium, an event page in Firefox).
//
// The content script sends the URL of each image that needs alt text. This script fetches the
// image (here, not in the page: an extension with host permissions may fetch images of any
// origin), sends it to the user's own describe-local server (POST /api/alt-text, the URL and
// token set on the options page) and answers with the alt text. Nothing is sent anywhere
// else. Each image URL is described once per browser session (memory, and storage.session
// across restarts of the worker); failures are not kept, so they are tried again later.
//
// The toolbar badge says how it goes: "ok" (the server is ready), "off" (it does not answer:
// its title says where it was looked for), or in a tab the number of images described there.
// While the server is down it is asked again every few seconds; when it answers, every tab is
// told to retry the images that failed. On install the options page opens.
"use strict";

const api = globalThis.browser ?? globalThis.chrome;

const DEFAULTS = Object.freeze({ server: "http://127.0.0.1:8000", token: "", names: false, maxChars: 125 });
const MAX_IMAGE_BYTES = 20 * 1024 * 1024; // the server's default upload limit
const MAX_PARALLEL = 2; // requests to the server at once (its queue holds 4 by default)
const RETRIES = 3; // for a busy server (503) or one still loading
const MAX_WAIT_S = 30;
const FETCH_TIMEOUT_MS = 60_000;
const WATCH_EVERY_MS = 3_000; // how often a server that is down is asked again
const WATCH_FOR_MS = 60 * 60_000; // and for how long, at most, before waiting for the next image
const HEALTH_TIMEOUT_MS = 5_000;
const BADGE = Object.freeze({ ready: ["ok", "#1a7f37"], down: ["off", "#b3261e"], loading: ["…", "#6b6b6b"] });

let server = { state: "unknown", address: "" }; // what the last request to the server found
const described = new Map(); // tab id -> images described in it (since it last loaded a page)
let watching = null; // the timer that asks a server that is down

const memory = new Map(); // cache key -> Promise of a reply
let running = 0;
const waiting = [];

async function settings() {
  const stored = await api.storage.local.get(Object.keys(DEFAULTS));
  return { ...DEFAULTS, ...stored };
}

// An address as the user may type it: "127.0.0.1:8000" is taken as http://127.0.0.1:8000.
function withScheme(address) {
  const text = String(address ?? "").trim();
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
}

function endpoint(address, path) {
  const base = withScheme(address);
  return new URL(path, base.endsWith("/") ? base : `${base}/`).href;
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
  if (image.origin === new URL(withScheme(server)).origin) return "an image of the describe-local server itself";
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

async function fetchWithTimeout(url, init, timeoutMs = FETCH_TIMEOUT_MS) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
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
      serverIs("down", config.server);
      return { ...failure(`describe-local is not reachable at ${config.server}`), serverDown: true };
    }
    if ((response.status === 503 || response.status === 429) && attempt < RETRIES) {
      const wait = Number(response.headers.get("Retry-After")) || 2;
      await sleep(Math.min(wait, MAX_WAIT_S) * 1000);
      continue;
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 503) {
      serverIs("loading", config.server);
      return { ...failure(body.detail || "describe-local is busy or still loading"), serverDown: true };
    }
    serverIs("ready", config.server);
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

// Is the server there, and does it take the token? For the options page: the address and token
// typed there (not yet saved) when given.
async function checkServer(typed = {}) {
  const config = { ...(await settings()), ...typed };
  const headers = config.token ? { Authorization: `Bearer ${config.token}` } : {};
  let body;
  try {
    const response = await fetchWithTimeout(endpoint(config.server, "api/health"), { headers, credentials: "omit" },
      HEALTH_TIMEOUT_MS);
    body = await response.json();
  } catch {
    return failure(`describe-local is not reachable at ${withScheme(config.server)}`);
  }
  const reply = { ok: true, status: body.status, needsToken: Boolean(body.describe_needs_token), token: "none" };
  if (config.token) {
    try {
      const check = await fetchWithTimeout(endpoint(config.server, "api/alt-text/token"), { headers, credentials: "omit" },
        HEALTH_TIMEOUT_MS);
      const answer = await check.json().catch(() => ({}));
      reply.token = check.ok ? (answer.admin ? "admin" : "accepted") : check.status === 404 ? "unknown" : "refused";
    } catch {
      reply.token = "unknown";
    }
  }
  return reply;
}

// The badge of one tab (or the default for all): the server's state, else the images described.
async function paintBadge(tabId) {
  if (!api.action) return;
  const count = tabId === undefined ? 0 : described.get(tabId) ?? 0;
  const [text, colour] = server.state === "ready" && count ? [String(count), BADGE.ready[1]]
    : BADGE[server.state] ?? ["", "#6b6b6b"];
  const where = server.address ? ` at ${withScheme(server.address)}` : "";
  const title = server.state === "down" ? `describe-local alt text: the server does not answer${where}; `
    + "images are described when it answers again"
    : server.state === "loading" ? `describe-local alt text: the server${where} is busy or still loading`
      : server.state === "ready" ? `describe-local alt text: ready${count ? `, ${count} images described here` : ""}`
        : "describe-local alt text";
  const target = tabId === undefined ? {} : { tabId };
  await Promise.all([api.action.setBadgeText({ ...target, text }), api.action.setTitle({ ...target, title }),
    api.action.setBadgeBackgroundColor({ ...target, color: colour })]).catch(() => {});
}

async function paintAll() {
  await paintBadge();
  await Promise.all([...described.keys()].map((tabId) => paintBadge(tabId)));
}

// What the last request found; a server that went down is watched until it answers again.
function serverIs(state, address) {
  const changed = server.state !== state || server.address !== address;
  const wasDown = server.state === "down" || server.state === "loading";
  server = { state, address };
  if (changed) paintAll();
  if (state === "down" || state === "loading") watchServer(address);
  else if (wasDown && state === "ready") retryEverywhere();
}
globalThis.serverState = () => ({ ...server });

function watchServer(address) {
  if (watching) return;
  const until = Date.now() + WATCH_FOR_MS;
  const ask = async () => {
    const reply = await checkServer({ server: address }).catch(() => failure("no answer"));
    if (reply.ok && reply.status === "ready") {
      watching = null;
      serverIs("ready", address);
    } else if (Date.now() < until) {
      watching = setTimeout(ask, WATCH_EVERY_MS);
    } else {
      watching = null;
    }
  };
  watching = setTimeout(ask, WATCH_EVERY_MS);
}

// The server answers again: every tab retries the images that failed.
async function retryEverywhere() {
  const tabs = await api.tabs.query({}).catch(() => []);
  for (const tab of tabs) {
    if (tab.id !== undefined) api.tabs.sendMessage(tab.id, { type: "retry" }).catch(() => {});
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
    const tabId = sender.tab?.id;
    describeImage(message.src, sender.tab?.url ?? sender.url ?? "").then((answer) => {
      if (answer.ok && answer.alt && tabId !== undefined && !message.onDemand) {
        described.set(tabId, (described.get(tabId) ?? 0) + 1);
        paintBadge(tabId);
      }
      reply(answer);
    }, (error) => reply(failure(String(error))));
    return true; // the reply comes later
  }
  if (message?.type === "check") {
    const typed = {};
    if (typeof message.server === "string") typed.server = message.server;
    if (typeof message.token === "string") typed.token = message.token;
    checkServer(typed).then(reply);
    return true;
  }
  return false;
});

// A new page in a tab: its count starts again.
api.tabs?.onUpdated.addListener((tabId, change) => {
  if (change.status === "loading" && described.has(tabId)) {
    described.delete(tabId);
    paintBadge(tabId);
  }
});
api.tabs?.onRemoved.addListener((tabId) => described.delete(tabId));

// Installed: the options page opens, since the extension needs the server's address first.
api.runtime.onInstalled.addListener((details) => {
  if (details.reason === "install") api.runtime.openOptionsPage().catch(() => {});
});
api.action?.onClicked.addListener(() => api.runtime.openOptionsPage().catch(() => {}));

api.commands?.onCommand.addListener((command) => {
  if (command === "describe-focused-image") describeFocusedInActiveTab().catch(() => {});
});

// New settings: forget what was described with the old ones.
api.storage.onChanged.addListener((_changes, area) => {
  if (area !== "local") return;
  memory.clear();
  api.storage.session?.clear().catch(() => {});
  server = { state: "unknown", address: "" };
  settings().then(async (config) => {
    const reply = await checkServer({ server: config.server });
    serverIs(!reply.ok ? "down" : reply.status === "ready" ? "ready" : "loading", config.server);
  }).catch(() => {});
});
