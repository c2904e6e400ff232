// The describe page: take a photo, send it, show and speak the description.
"use strict";

(() => {
  const form = document.getElementById("describe-form");
  const photoInput = document.getElementById("photo");
  const langSelect = document.getElementById("lang");
  const tokenField = document.getElementById("token-field");
  const tokenInput = document.getElementById("token");
  const result = document.getElementById("result");
  const description = document.getElementById("description");
  const details = document.getElementById("details");
  const preview = document.getElementById("preview");
  const player = document.getElementById("player");
  const playButton = document.getElementById("play");
  const stopButton = document.getElementById("stop");

  let busy = false;
  let previewUrl = null;

  tokenInput.value = localStorage.getItem("describe-token") || "";
  tokenInput.addEventListener("change", () => localStorage.setItem("describe-token", tokenInput.value.trim()));
  langSelect.addEventListener("change", () => localStorage.setItem("describe-lang", langSelect.value));
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
        dl.showError(`The server could not load its models: ${health.error || "unknown error"}.`);
        return;
      }
      sayOnce(reachable ? "The server is getting ready. Please wait."
                        : "The server cannot be reached. Trying again.");
      await new Promise((resolve) => setTimeout(resolve, reachable ? 2000 : 5000));
    }
  }

  function showDetails(data) {
    const rows = [];
    if (data.caption) rows.push(["Caption", data.caption]);
    if (data.people.length) rows.push(["People recognised", data.people.join(", ")]);
    if (data.unknown_faces) rows.push(["Faces not recognised", String(data.unknown_faces)]);
    if (data.text_found) rows.push(["Text found", data.text_found, data.text_language]);
    if (data.text_language) rows.push(["Language of the text", data.text_language]);
    for (const note of data.notes) rows.push(["Note", note]);
    for (const [stage, problem] of Object.entries(data.errors)) rows.push([`Problem (${stage})`, problem]);
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

  async function describePhoto(file) {
    if (busy) return;
    busy = true;
    dl.clearMessages();
    player.pause();
    result.setAttribute("aria-busy", "true");
    dl.announce("Describing your photo. This takes a few seconds.");

    const body = new FormData();
    body.append("photo", file, file.name || "photo.jpg");
    body.append("lang", langSelect.value);
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
      description.textContent = data.text;
      description.lang = data.language || "en"; // read in the language it is spoken in
      showDetails(data);
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = URL.createObjectURL(file);
      preview.src = previewUrl;
      preview.hidden = false;
      if (data.audio_url) {
        player.src = data.audio_url;
        player.load();
      }
      playButton.hidden = !data.audio_url;
      stopButton.hidden = !data.audio_url;
      playButton.textContent = "Play";
      result.hidden = false;
      const hint = data.audio_url ? " Press Play to hear it." : "";
      dl.announce(["Description ready: ", dl.inLanguage(data.text, data.language), hint]);
    } catch (_) {
      dl.announce("");
      dl.showError("Could not reach the server. Check the connection and take the photo again.");
    } finally {
      result.removeAttribute("aria-busy");
      busy = false;
      photoInput.value = ""; // so that the same photo can be chosen again
    }
  }

  photoInput.addEventListener("change", () => {
    const file = photoInput.files && photoInput.files[0];
    if (file) describePhoto(file);
  });

  // Sound starts only from the user's own tap, as browsers require.
  playButton.addEventListener("click", async () => {
    try {
      player.currentTime = 0;
      await player.play();
    } catch (error) {
      dl.showError(`The audio could not be played (${error.name}). The description is shown as text above.`);
    }
  });
  stopButton.addEventListener("click", () => {
    player.pause();
    player.currentTime = 0;
    stopButton.disabled = true;
    playButton.focus();
  });
  player.addEventListener("playing", () => {
    playButton.textContent = "Replay";
    stopButton.disabled = false;
  });
  player.addEventListener("ended", () => { stopButton.disabled = true; });
  player.addEventListener("error", () => {
    if (player.getAttribute("src")) {
      dl.showError("The audio is no longer available. Take the photo again to hear it.");
    }
  });

  loadLanguages();
  waitUntilReady();
})();
