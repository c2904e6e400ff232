// The describe page: take (camera.js) or choose a photo, send it, speak the description at
// once and show it. The server streams it: its speech plays from the first words while the rest
// is still being made, and the text is shown when it is done. An answer that is not streamed
// (an older server) is played and shown when it comes.
"use strict";

(() => {
  const form = document.getElementById("describe-form");
  const photoInputs = [[document.getElementById("photo"), "took"], [document.getElementById("choose"), "chose"]];
  const langSelect = document.getElementById("lang");
  const detailRadios = Array.from(document.querySelectorAll("input[name=detail]"));
  const tokenField = document.getElementById("token-field");
  const tokenInput = document.getElementById("token");
  const result = document.getElementById("result");
  const resultTitle = document.getElementById("result-title");
  const description = document.getElementById("description");
  const details = document.getElementById("details");
  const detailsBox = document.getElementById("details-box");
  const preview = document.getElementById("preview");
  const player = document.getElementById("player");
  const SAY_AFTER_MS = 1000; // "Describing…" only where nothing is heard by then
  const DROPPED = "Could not reach the server. Check the connection and take the photo again.";

  const queue = []; // photos chosen while another was being described, in order
  let busy = false;
  let savedUnseen = false; // a description went to the history unseen, because another photo was waiting
  let previewUrl = null;
  let ready = null; // resolves once the server has loaded its models
  let events = null; // the EventSource of the description being streamed
  let sayLater = null; // the timer of a "Describing…" not said yet
  let playingSaid = null; // what to say once the stream is heard ("Playing."), or null: said or nothing
  let refused = false; // the browser would not play the stream by itself
  let readySaid = null; // "Description ready: …", once a streamed one is done before it is heard

  tokenInput.value = localStorage.getItem("describe-token") || "";
  tokenInput.addEventListener("change", () => localStorage.setItem("describe-token", tokenInput.value.trim()));
  langSelect.addEventListener("change", () => localStorage.setItem("describe-lang", langSelect.value));
  const savedDetail = localStorage.getItem("describe-detail");
  for (const radio of detailRadios) {
    if (radio.value === savedDetail) radio.checked = true;
    radio.addEventListener("change", () => localStorage.setItem("describe-detail", radio.value));
  }
  form.addEventListener("submit", (event) => event.preventDefault());

  async function loadLanguages() {
    try {
      const response = await fetch("/api/languages");
      if (!response.ok) return;
      const data = await response.json();
      const wanted = localStorage.getItem("describe-lang") || data.default || "en";
      for (const { code, name } of data.languages) dl.languageNames.set(code, name);
      langSelect.replaceChildren(...data.languages.map(({ code, name }) => new Option(name, code)));
      langSelect.value = data.languages.some((l) => l.code === wanted) ? wanted : "en";
    } catch (_) { /* offline: English stays */ }
  }

  async function waitUntilReady() {
    let said = "";
    const sayOnce = (text) => { if (said !== text) dl.announce(text); said = text; };
    for (;;) {
      let health = null;
      let reachable = true;
      try {
        const response = await fetch("/api/health", { cache: "no-store" });
        if (response.ok) health = await response.json();
      } catch (_) {
        reachable = false; // e.g. a kiosk whose page came from the service worker
      }
      if (health && health.status === "ready") {
        if (health.describe_needs_token) tokenField.hidden = false;
        if (said) dl.announce("The server is ready. Take a photo.");
        return;
      }
      if (health && health.status === "failed") {
        // Why is for whoever runs the server: it is in their console.
        dl.showError("The server could not start describing. Ask the person who runs it to look at it.");
        return;
      }
      sayOnce(reachable ? "The server is getting ready. Please wait."
                        : "The server cannot be reached. Trying again.");
      await new Promise((resolve) => setTimeout(resolve, reachable ? 2000 : 5000));
    }
  }

  // Problems as the listener needs them: which part did not run, not the server's own words.
  const STAGES = { caption: "Caption", faces: "People", text: "Reading text", speech: "Speech" };
  const STATES = {
    off: "Not available on this server",
    failed: "Could not run this time",
    timed_out: "Took too long this time",
  };

  // Details, collapsed: what was found item by item, the stages that did not run (a stage that
  // is off is said here, not in the description at the top), and the time taken.
  function showDetails(data, states) {
    const rows = [];
    if (data.caption) rows.push(["Caption", data.caption]);
    if (data.people.length) rows.push(["People recognised", data.people.join(", ")]);
    if (data.unknown_faces) rows.push(["Faces not recognised", String(data.unknown_faces)]);
    if (data.text_found) rows.push(["Text found", data.text_found, data.text_language]);
    if (data.text_language) rows.push(["Language of the text", dl.languageName(data.text_language)]);
    rows.push(["Spoken in", dl.languageName(data.language || "en")]);
    for (const note of data.notes) rows.push(["Note", dl.plainWords(note)]);
    for (const [stage, state] of Object.entries(states)) {
      if (STATES[state]) rows.push([STAGES[stage] || stage, STATES[state]]);
    }
    if (data.timings_ms.total !== undefined) {
      rows.push(["Time taken", `${(data.timings_ms.total / 1000).toFixed(1)} seconds`]);
    }
    details.replaceChildren(...rows.flatMap(([term, value, lang]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      if (lang) dd.lang = lang;
      return [dt, dd];
    }));
  }

  // The description being streamed is no longer followed, and nothing more is said of it.
  function stopStream() {
    if (events) events.close();
    events = null;
    clearTimeout(sayLater);
    sayLater = null;
    playingSaid = null;
    readySaid = null;
  }

  // Everything about the previous photo goes at once: text, photo, audio, questions.
  function resetResult() {
    stopStream();
    result.hidden = true;
    detailsBox.hidden = false;
    document.body.classList.remove("has-result");
    description.textContent = "";
    details.replaceChildren();
    detailsBox.open = false;
    preview.hidden = true;
    preview.removeAttribute("src");
    preview.alt = "";
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    dlPlayer.clear();
    dlAsk.reset();
  }

  // Where the screen is too short for both the camera and the description (e.g. at 200% zoom),
  // the description is scrolled into view.
  function inView() {
    if (description.getBoundingClientRect().top > window.innerHeight * 0.8) {
      resultTitle.scrollIntoView({ block: "start" });
    }
  }

  // A streamed description starts: its audio plays at once (the tap primed the player), with
  // Play/Pause and the speeds; the text comes when it is done. The live region says only
  // "Playing." once it is heard, so the screen reader does not talk over the speech.
  function startStream(data, fromQueue) {
    refused = false;
    playingSaid = fromQueue ? null : "Playing."; // a queued photo's start was said already
    result.hidden = false;
    result.removeAttribute("aria-busy"); // Play/Pause can be used; the text is what is still to come
    detailsBox.hidden = true;
    description.setAttribute("aria-busy", "true");
    document.body.classList.add("has-result");
    inView();
    dlPlayer.live(data.audio_url).then((playing) => {
      if (playing !== false) return;
      refused = true;
      if (readySaid) { // done already, and waiting to be heard: it will not be
        dl.announce(`${readySaid} Press Play to hear it.`);
        playingSaid = null;
        readySaid = null;
      }
    });
  }

  player.addEventListener("playing", () => {
    if (!playingSaid || !dlPlayer.livePlaying()) return;
    clearTimeout(sayLater);
    sayLater = null;
    dl.announce(playingSaid);
    playingSaid = null;
    readySaid = null;
  });

  // Follows a streamed description's events until it is done: resolves with the same JSON a
  // plain POST returns, or rejects with the sentence to show (the server's `error` event, or
  // the stream broken off before `done`; an EventSource would reconnect and hear it all again,
  // so it is closed at the first of these).
  function follow(url) {
    return new Promise((resolve, reject) => {
      const source = new EventSource(url);
      events = source;
      const end = (outcome, value) => {
        source.close();
        if (events === source) events = null;
        outcome(value);
      };
      source.addEventListener("done", (event) => {
        try {
          end(resolve, JSON.parse(event.data));
        } catch (_) {
          end(reject, new Error(DROPPED));
        }
      });
      // The server's `error` event and the connection's own error share the name; only the
      // server's has data.
      source.addEventListener("error", (event) => {
        let detail = "";
        try {
          detail = event.data ? JSON.parse(event.data).detail : "";
        } catch (_) { /* not JSON */ }
        end(reject, new Error(dl.asSentence(detail) || DROPPED));
      });
    });
  }

  async function showResult(file, data, how, shown, states, streamed) {
    const lang = data.language || "en";
    description.textContent = shown;
    description.lang = lang; // read in the language it is spoken in
    showDetails(data, states);
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.alt = `Photo you ${how} at ${dl.clock(new Date())}`; // short: the description is beside it
    preview.hidden = false;
    const stamp = new Date().toISOString().slice(0, 19).replace(/[T:]/g, "-");
    if (streamed) dlPlayer.done(data.audio_url, shown, stamp);
    else dlPlayer.load(data.audio_url, shown, stamp);
    dlAsk.offer(data.photo_id);
    result.hidden = false;
    detailsBox.hidden = false;
    description.removeAttribute("aria-busy");
    document.body.classList.add("has-result");
    const count = dl.sentenceCount(shown, lang);
    const ready = `Description ready: ${count} sentence${count === 1 ? "" : "s"}.`;
    if (!data.audio_url) {
      // No audio: the text is read where focus lands, where it can be paused and re-read.
      stopStream();
      dl.announce(ready);
      description.focus({ preventScroll: true });
      return;
    }
    // The MP3 speaks the description at once, so the whole text is neither put in the live
    // region nor focused (that would read it a second time over the audio): the live region
    // says only that it is ready (or, for a stream that is heard, nothing more than "Playing."),
    // and focus goes back to where the next photo is taken, with Play/Pause and the text right
    // after it.
    inView();
    if (streamed) {
      clearTimeout(sayLater);
      sayLater = null;
      if (refused) dl.announce(`${ready} Press Play to hear it.`);
      else if (!dlPlayer.livePlaying()) dl.announce(ready);
      else if (playingSaid) readySaid = ready; // about to be heard: "Playing." comes when it is
      if (refused || !dlPlayer.livePlaying()) playingSaid = null;
      // Focus is where the tap left it, or where the listener has gone while it played.
      if (document.activeElement === document.body || !document.activeElement) dlCamera.focusTake();
      return;
    }
    stopStream();
    const playing = await dlPlayer.playNow();
    if (playing === true) dl.announce(`${ready} Playing.`);
    else if (playing === false) dl.announce(`${ready} Press Play to hear it.`);
    else dl.announce(ready);
    dlCamera.focusTake();
  }

  function choose(file, how) {
    if (!file) return;
    if (busy) {
      queue.push([file, how]);
      dl.announce(queue.length === 1 ? "Photo queued. It will be described next."
                                     : `Photo queued. ${queue.length} photos are waiting.`);
      return;
    }
    describePhoto(file, how, false);
  }

  async function describePhoto(file, how, fromQueue) {
    busy = true;
    dl.clearMessages();
    resetResult();
    result.setAttribute("aria-busy", "true");
    let saying = "Describing your photo. This takes a few seconds.";
    if (fromQueue) {
      saying = savedUnseen ? "The photo before is in Past descriptions. Describing the next photo."
                           : "Describing the next photo.";
    }
    savedUnseen = false;
    // A streamed description is heard within a second: "Describing…" would be read over it, so
    // it is said only where nothing plays by then (a queued photo's is said at once).
    let streaming = false;
    if (fromQueue) dl.announce(saying);
    else {
      sayLater = setTimeout(() => {
        sayLater = null;
        if (!dlPlayer.livePlaying()) dl.announce(streaming ? "Describing your photo." : saying);
      }, SAY_AFTER_MS);
    }

    const body = new FormData();
    body.append("photo", file, file.name || "photo.jpg");
    body.append("lang", langSelect.value);
    body.append("detail", (detailRadios.find((r) => r.checked) || detailRadios[0]).value);
    body.append("stream", "true");
    try {
      const response = await fetch("/api/describe", {
        method: "POST",
        body,
        headers: dl.authHeaders(tokenInput.value.trim()),
      });
      if (!response.ok) {
        if (response.status === 401) tokenField.hidden = false;
        stopStream();
        dl.announce("");
        dl.showError(await dl.errorMessage(response));
        return;
      }
      let data = await response.json();
      streaming = data.stream === true && Boolean(data.audio_url && data.events_url);
      if (streaming) {
        startStream(data, fromQueue);
        try {
          data = await follow(data.events_url);
        } catch (error) {
          resetResult();
          dl.announce("");
          dl.showError(error.message);
          return;
        }
      }
      const states = dl.stageStates(data);
      const shown = dl.foundText(data.text, states);
      dlHistory.add({ text: data.text, found: shown, language: data.language, how, audioUrl: data.audio_url }, file);
      if (queue.length) {
        savedUnseen = true; // another photo is waiting and would replace this one at once
      } else {
        await showResult(file, data, how, shown, states, streaming);
      }
    } catch (_) {
      resetResult();
      dl.announce("");
      dl.showError("Could not reach the server. Check the connection and take the photo again.");
    } finally {
      result.removeAttribute("aria-busy");
      busy = false;
      const next = queue.shift();
      if (next) describePhoto(next[0], next[1], true);
    }
  }

  for (const [input, how] of photoInputs) {
    // The tap that opens the camera app or the picker lets the description play by itself later.
    input.addEventListener("click", () => dlPlayer.prime());
    input.addEventListener("change", () => {
      for (const file of Array.from(input.files || [])) choose(file, how);
      input.value = ""; // so that the same photo can be chosen again
    });
  }
  dlCamera.onPhoto(choose);

  // A photo shared from another app arrives as /#shared=ID (see /share on the server).
  async function takeSharedPhoto() {
    const match = /^#shared=([\w-]+)$/.exec(location.hash);
    if (!match) return;
    history.replaceState(null, "", location.pathname); // once only, even on reload
    if (match[1] === "failed") {
      dl.showError("The shared photo could not be received. Choose it here instead.");
      return;
    }
    if (match[1] === "needs-token") {
      dl.showError("This server needs its token to take photos: enter it here, then choose the photo here.");
      return;
    }
    try {
      const response = await fetch(`/api/shared/${match[1]}`, { cache: "no-store" });
      if (!response.ok) {
        dl.showError(await dl.errorMessage(response));
        return;
      }
      await ready;
      choose(new File([await response.blob()], "shared-photo", { type: response.headers.get("content-type") }), "shared");
    } catch (_) {
      dl.showError("Could not reach the server. Choose the photo here instead.");
    }
  }

  loadLanguages();
  ready = waitUntilReady();
  takeSharedPhoto();
})();
