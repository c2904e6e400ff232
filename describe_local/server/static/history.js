// Past descriptions, kept on this device only (IndexedDB): text, language,
// time and a small thumbnail. Nothing of it goes back to the server.
"use strict";

const dlHistory = (() => {
  const DB_NAME = "describe-local";
  const STORE = "history";
  const MAX_ENTRIES = 50; // the oldest go first
  const THUMB_PX = 160;
  const PREVIEW_CHARS = 90;

  const list = document.getElementById("history-list");
  const empty = document.getElementById("history-empty");
  const clearButton = document.getElementById("clear-history");
  let dbPromise = null;

  function open() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        if (!("indexedDB" in window)) { reject(new Error("no IndexedDB")); return; }
        const request = indexedDB.open(DB_NAME, 1);
        request.onupgradeneeded = () => {
          request.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
        };
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    }
    return dbPromise;
  }

  // Runs `work(store)` in a transaction; resolves with the value of the
  // request it returns (if any) once the transaction is done.
  async function inStore(mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = work(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(request ? request.result : undefined);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  }

  // A small JPEG of the photo as a data: URL, or "" where the browser cannot
  // decode it (HEIC on most browsers).
  async function thumbnail(file) {
    try {
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(1, THUMB_PX / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      return canvas.toDataURL("image/jpeg", 0.7);
    } catch (_) {
      return "";
    }
  }

  async function add(text, language, file) {
    try {
      const entry = { text, language, time: Date.now(), thumb: file ? await thumbnail(file) : "" };
      await inStore("readwrite", (store) => store.add(entry));
      const keys = await inStore("readonly", (store) => store.getAllKeys());
      if (keys.length > MAX_ENTRIES) {
        const oldest = keys.slice(0, keys.length - MAX_ENTRIES);
        await inStore("readwrite", (store) => { for (const key of oldest) store.delete(key); });
      }
      await render();
    } catch (_) { /* private browsing without storage: the page works without history */ }
  }

  async function entries() {
    const all = await inStore("readonly", (store) => store.getAll());
    return all.reverse(); // newest first
  }

  function item(entry) {
    const li = document.createElement("li");
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const when = document.createElement("time");
    const date = new Date(entry.time);
    when.dateTime = date.toISOString();
    when.textContent = date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    const gist = document.createElement("span");
    gist.lang = entry.language || "en";
    gist.textContent = entry.text.length > PREVIEW_CHARS ? `${entry.text.slice(0, PREVIEW_CHARS)}…` : entry.text;
    summary.append(when, ": ", gist);
    const full = document.createElement("p");
    full.lang = entry.language || "en";
    full.textContent = entry.text;
    details.append(summary);
    if (entry.thumb) {
      const img = document.createElement("img");
      img.src = entry.thumb;
      img.alt = ""; // the text beside it says what is in it
      img.className = "thumb";
      details.append(img);
    }
    details.append(full);
    li.append(details);
    return li;
  }

  async function render() {
    let all = [];
    try {
      all = await entries();
    } catch (_) {
      empty.textContent = "History is not available in this browser.";
    }
    list.replaceChildren(...all.map(item));
    empty.hidden = all.length > 0;
    clearButton.hidden = all.length === 0;
  }

  async function clear() {
    try {
      await inStore("readwrite", (store) => store.clear());
    } catch (_) { /* nothing was kept */ }
    await render();
    dl.announce("History cleared.");
    document.getElementById("history-title").focus();
  }

  clearButton.addEventListener("click", clear);
  render();

  return { add, clear, entries };
})();
