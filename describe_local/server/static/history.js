// Past descriptions, kept on this device only (IndexedDB): the text, what was found, language,
// time, a small thumbnail and the spoken MP3. Nothing of it goes back to the server. Each entry
// starts with what was found, and can be played again, copied or removed; clearing them all
// asks first, in a dialog.
"use strict";

const dlHistory = (() => {
  const DB_NAME = "describe-local";
  const STORE = "history";
  const MAX_ENTRIES = 50; // the oldest go first
  const THUMB_PX = 160;
  const GIST_CHARS = 200; // longer texts show this much first, the whole text below it

  const list = document.getElementById("history-list");
  const empty = document.getElementById("history-empty");
  const title = document.getElementById("history-title");
  const clearButton = document.getElementById("clear-history");
  const dialog = document.getElementById("clear-dialog");
  const confirmButton = document.getElementById("clear-confirm");
  const cancelButton = document.getElementById("clear-cancel");
  const player = document.getElementById("history-player");
  let dbPromise = null;
  let playingId = null; // the entry whose MP3 is in the history player
  let playingUrl = null;

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

  // The MP3 at `url` as a blob, or null (it is kept with the entry, to be played again).
  async function mp3(url) {
    if (!url) return null;
    try {
      const response = await fetch(url);
      return response.ok ? await response.blob() : null;
    } catch (_) {
      return null;
    }
  }

  // `description`: text (as spoken), found (as shown), language, how ("took", "chose",
  // "shared") and audioUrl.
  async function add(description, file) {
    try {
      const [thumb, audio] = await Promise.all([file ? thumbnail(file) : "", mp3(description.audioUrl)]);
      const entry = {
        text: description.text,
        found: description.found || description.text,
        language: description.language,
        how: description.how || "",
        time: Date.now(),
        thumb,
        audio,
      };
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

  // What an entry starts with: what was found. Entries saved before `found` was kept skip a
  // leading sentence that only says a stage is off ("I can't describe the scene because …")
  // when there is more.
  function foundOf(entry) {
    if (entry.found) return entry.found;
    const rest = entry.text.replace(/^I can't [^.]*\bbecause\b[^.]*\.\s+/, "");
    return rest.trim() ? rest : entry.text;
  }

  // The first GIST_CHARS characters, cut at a word, or the whole text where it is shorter.
  function gistOf(text) {
    if (text.length <= GIST_CHARS) return text;
    const cut = text.slice(0, GIST_CHARS);
    const space = cut.lastIndexOf(" ");
    return `${(space > GIST_CHARS / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
  }

  function whenOf(entry) {
    const date = new Date(entry.time);
    const today = new Date().toDateString() === date.toDateString();
    return today ? dl.clock(date) : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  // A button whose visible word is `verb` and whose name says which entry: "Play the
  // description from 10:42" (the visible word first, as WCAG's label in name asks).
  function entryButton(verb, which, action, id) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button secondary";
    button.dataset.action = action;
    button.dataset.id = String(id);
    const word = document.createElement("span");
    word.className = "verb";
    word.textContent = verb;
    const rest = document.createElement("span");
    rest.className = "visually-hidden";
    rest.textContent = ` ${which}`;
    button.append(word, rest);
    return button;
  }

  function item(entry) {
    const li = document.createElement("li");
    li.className = "entry";
    li.dataset.id = String(entry.id);
    const lang = entry.language || "en";
    const found = foundOf(entry);
    const gist = document.createElement("p");
    gist.className = "gist";
    gist.lang = lang;
    gist.id = `history-gist-${entry.id}`;
    gist.tabIndex = -1;
    gist.textContent = gistOf(found);

    const when = document.createElement("time");
    const date = new Date(entry.time);
    when.dateTime = date.toISOString();
    when.textContent = whenOf(entry);
    const meta = document.createElement("p");
    meta.className = "meta";
    meta.append(when);
    if (lang !== "en") meta.append(`, in ${dl.languageName(lang)}`);
    li.append(gist, meta);

    if (gist.textContent !== entry.text) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "Whole text";
      const full = document.createElement("p");
      full.className = "full";
      full.lang = lang;
      full.tabIndex = -1;
      full.textContent = entry.text;
      details.append(summary, full);
      li.append(details);
    }
    if (entry.thumb) {
      const img = document.createElement("img");
      img.src = entry.thumb;
      img.alt = ""; // the text beside it says what is in it
      img.className = "thumb";
      li.append(img);
    }

    const which = `the description from ${when.textContent}`;
    const actions = document.createElement("div");
    actions.className = "controls entry-actions";
    const playing = playingId === entry.id && !player.paused;
    actions.append(
      entry.audio ? entryButton(playing ? "Pause" : "Play", which, "play", entry.id)
                  : entryButton("Show text", which, "show", entry.id),
      entryButton("Copy", which, "copy", entry.id),
      entryButton("Remove", which, "remove", entry.id),
    );
    li.append(actions);
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
    return all;
  }

  async function entry(id) {
    return inStore("readonly", (store) => store.get(id));
  }

  function setPlayLabels() {
    for (const button of list.querySelectorAll("button[data-action=play]")) {
      const on = Number(button.dataset.id) === playingId && !player.paused;
      button.querySelector(".verb").textContent = on ? "Pause" : "Play";
    }
  }

  async function replay(id) {
    if (playingId === id && player.getAttribute("src")) {
      if (player.paused) await player.play().catch(() => {});
      else player.pause();
      return;
    }
    const saved = await entry(id);
    if (!saved || !saved.audio) return;
    if (playingUrl) URL.revokeObjectURL(playingUrl);
    playingUrl = URL.createObjectURL(saved.audio);
    playingId = id;
    player.src = playingUrl;
    player.playbackRate = Number(localStorage.getItem("describe-rate")) || 1;
    try {
      await player.play();
    } catch (error) {
      dl.showError(`The audio could not be played (${error.name}). The text is shown.`);
    }
  }

  // Without a kept MP3 the entry's text is shown, and focus moves to it to be read.
  function show(li) {
    const details = li.querySelector("details");
    if (details) details.open = true;
    const text = li.querySelector(".full") || li.querySelector(".gist");
    text.focus();
  }

  async function copy(id) {
    const saved = await entry(id);
    if (!saved) return;
    if (await dl.copyText(foundOf(saved))) dl.announce("Text copied.");
    else dl.showError("The text could not be copied. Open it and select it to copy it.");
  }

  async function remove(id, li) {
    const label = li.querySelector("time").textContent;
    const after = li.nextElementSibling || li.previousElementSibling;
    const afterId = after ? after.dataset.id : null;
    if (playingId === id) {
      player.pause();
      player.removeAttribute("src");
      playingId = null;
    }
    try {
      await inStore("readwrite", (store) => store.delete(id));
    } catch (_) { /* nothing was kept */ }
    await render();
    dl.announce(`Removed the description from ${label}.`);
    // Focus stays in the list: on the entry that took its place, or on the heading.
    const next = afterId && list.querySelector(`li[data-id="${afterId}"] button`);
    (next || title).focus();
  }

  async function clear() {
    player.pause();
    player.removeAttribute("src");
    playingId = null;
    try {
      await inStore("readwrite", (store) => store.clear());
    } catch (_) { /* nothing was kept */ }
    await render();
    dl.announce("History cleared.");
    title.focus();
  }

  list.addEventListener("click", (event) => {
    const button = event.target instanceof Element && event.target.closest("button[data-action]");
    if (!button) return;
    const id = Number(button.dataset.id);
    const li = button.closest("li");
    const actions = { play: () => replay(id), show: () => show(li), copy: () => copy(id), remove: () => remove(id, li) };
    actions[button.dataset.action]();
  });
  for (const event of ["play", "pause", "ended", "emptied"]) player.addEventListener(event, setPlayLabels);
  player.addEventListener("play", () => {
    for (const other of document.querySelectorAll("#player, #answer-player")) other.pause();
  });

  // Clear history: a modal dialog asks first. Its "Keep them" button has focus when it opens
  // (nothing is lost by Enter); focus goes back to "Clear history" when it is kept, and to
  // the heading of the (now empty) list when it is cleared.
  clearButton.addEventListener("click", () => dialog.showModal());
  cancelButton.addEventListener("click", () => dialog.close("keep"));
  confirmButton.addEventListener("click", () => dialog.close("clear"));
  dialog.addEventListener("close", () => {
    const answer = dialog.returnValue;
    dialog.returnValue = "";
    if (answer === "clear") clear();
    else clearButton.focus();
  });
  render();

  return { add, clear, entries };
})();
