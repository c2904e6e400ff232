// The describe page: take or choose a photo, send it, show and speak the description.
"use strict";

(() => {
  const form = document.getElementById("describe-form");
  const photoInputs = [document.getElementById("photo"), document.getElementById("choose")];
  const langSelect = document.getElementById("lang");
  const detailRadios = Array.from(document.querySelectorAll("input[name=detail]"));
  const tokenField = document.getElementById("token-field");
  const tokenInput = document.getElementById("token");
  const result = document.getElementById("result");
  const resultTitle = document.getElementById("result-title");
  const description = document.getElementById("description");
  const details = document.getElementById("details");
  const preview = document.getElementById("preview");

  const queue = []; // photos chosen while another was being described, in order
  let busy = false;
  let savedUnseen = false; // a description went to the history unseen, because another photo was waiting
  let previewUrl = null;
  let ready = null; // resolves once the server has loaded its models

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

  function showDetails(data) {
    const rows = [];
    if (data.caption) rows.push(["Caption", data.caption]);
    if (data.people.length) rows.push(["People recognised", data.people.join(", ")]);
    if (data.unknown_faces) rows.push(["Faces not recognised", String(data.unknown_faces)]);
    if (data.text_found) rows.push(["Text found", data.text_found, data.text_language]);
    if (data.text_language) rows.push(["Language of the text", data.text_language]);
    for (const note of data.notes) rows.push(["Note", dl.plainWords(note)]);
    for (const [stage, problem] of Object.entries(data.errors)) {
      const off = problem.startsWith("not installed");
      rows.push([STAGES[stage] || stage, off ? "Not available on this server" : "Could not run this time"]);
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

  // Everything about the previous photo goes at once: text, photo, audio, questions.
  function resetResult() {
    result.hidden = true;
    description.textContent = "";
    details.replaceChildren();
    preview.hidden = true;
    preview.removeAttribute("src");
    preview.alt = "";
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    dlPlayer.clear();
    dlAsk.reset();
  }

  function showResult(file, data) {
    const lang = data.language || "en";
    description.textContent = data.text;
    description.lang = lang; // read in the language it is spoken in
    showDetails(data);
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.alt = data.text;
    preview.lang = lang;
    preview.hidden = false;
    dlPlayer.load(data.audio_url, data.text, new Date().toISOString().slice(0, 19).replace(/[T:]/g, "-"));
    dlAsk.offer(data.photo_id);
    result.hidden = false;
    const count = dl.sentenceCount(data.text, lang);
    const hint = data.audio_url ? " Press Play to hear it." : "";
    dl.announce(`Description ready: ${count} sentence${count === 1 ? "" : "s"}.${hint}`);
    // The whole text is read where focus lands, where the listener can pause and re-read it.
    description.focus({ preventScroll: true });
    resultTitle.scrollIntoView({ block: "start" });
  }

  function choose(file) {
    if (!file) return;
    if (busy) {
      queue.push(file);
      dl.announce(queue.length === 1 ? "Photo queued. It will be described next."
                                     : `Photo queued. ${queue.length} photos are waiting.`);
      return;
    }
    describePhoto(file, false);
  }

  async function describePhoto(file, fromQueue) {
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
    dl.announce(saying);

    const body = new FormData();
    body.append("photo", file, file.name || "photo.jpg");
    body.append("lang", langSelect.value);
    body.append("detail", (detailRadios.find((r) => r.checked) || detailRadios[0]).value);
    try {
      const response = await fetch("/api/describe", {
        method: "POST",
        body,
        headers: dl.authHeaders(tokenInput.value.trim()),
      });
      if (!response.ok) {
        if (response.status === 401) tokenField.hidden = false;
        dl.announce("");
        dl.showError(await dl.errorMessage(response));
        return;
      }
      const data = await response.json();
      dlHistory.add(data.text, data.language, file);
      if (queue.length) {
        savedUnseen = true; // another photo is waiting and would replace this one at once
      } else {
        showResult(file, data);
      }
    } catch (_) {
      dl.announce("");
      dl.showError("Could not reach the server. Check the connection and take the photo again.");
    } finally {
      result.removeAttribute("aria-busy");
      busy = false;
      const next = queue.shift();
      if (next) describePhoto(next, true);
    }
  }

  for (const input of photoInputs) {
    input.addEventListener("change", () => {
      for (const file of Array.from(input.files || [])) choose(file);
      input.value = ""; // so that the same photo can be chosen again
    });
  }

  // A photo shared from another app arrives as /#shared=ID (see /share on the server).
  async function takeSharedPhoto() {
    const match = /^#shared=([\w-]+)$/.exec(location.hash);
    if (!match) return;
    history.replaceState(null, "", location.pathname); // once only, even on reload
    if (match[1] === "failed") {
      dl.showError("The shared photo could not be received. Choose it here instead.");
      return;
    }
    try {
      const response = await fetch(`/api/shared/${match[1]}`, { cache: "no-store" });
      if (!response.ok) {
        dl.showError(await dl.errorMessage(response));
        return;
      }
      await ready;
      choose(new File([await response.blob()], "shared-photo", { type: response.headers.get("content-type") }));
    } catch (_) {
      dl.showError("Could not reach the server. Choose the photo here instead.");
    }
  }

  loadLanguages();
  ready = waitUntilReady();
  takeSharedPhoto();
})();
