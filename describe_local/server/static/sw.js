// Service worker: keeps the page itself so that a kiosk opens it even while
// the network is down. Network first, so an updated server is seen at once;
// the API, the audio and shared photos (POST /share) are never cached.
"use strict";

const CACHE = "describe-local-v4";
const SHELL = [
  "/",
  "/gallery",
  "/manifest.webmanifest",
  "/static/app.css",
  "/static/common.js",
  "/static/history.js",
  "/static/player.js",
  "/static/ask.js",
  "/static/camera.js",
  "/static/live.js",
  "/static/describe.js",
  "/static/gallery.js",
  "/static/icons/icon.svg",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  const shell = request.method === "GET" && url.origin === self.location.origin
    && !url.pathname.startsWith("/api/") && !url.pathname.startsWith("/docs")
    && !url.pathname.startsWith("/openapi");
  if (!shell) return; // straight to the network

  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      })
      .catch(() => caches.match(request, { ignoreSearch: true })
        .then((cached) => cached || Response.error())),
  );
});
