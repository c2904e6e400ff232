// Live text: while it is on, the camera's frames go to the server (downscaled, one at a time, so
// the rate follows what the server manages), and each line of text new to the listener is said
// once through the live region, in the listener's own screen reader voice (or, if they prefer,
// the server's voice: POST /api/speak, played in turn). The server also says
// which way to move the phone; that is said only when no line is being read. "Read the page"
// waits until a whole page is in view, then takes a full photo and reads all of it. Pause, Read
// the page and Leave are one action each; leaving stops the camera.
"use strict";

const dlLive = (() => {
  const startButton = document.getElementById("live-start");
  const panel = document.getElementById("live");
  const pauseButton = document.getElementById("live-pause");
  const pageButton = document.getElementById("live-page");
  const leaveButton = document.getElementById("live-leave");
  const heardList = document.getElementById("live-heard");
  const pageBox = document.getElementById("live-page-box");
  const pageText = document.getElementById("live-page-text");
  const voiceBox = document.getElementById("live-voice");
  const speaker = new Audio(); // the server's voice, for a listener who prefers it to their screen reader
  const toSpeak = []; // [text, language] waiting for the server's voice

  const FRAME_SIDE = 640; // what the text stage reads well and a phone sends quickly
  const FRAME_QUALITY = 0.8;
  const MIN_GAP_MS = 150; // at most some 6 frames a second, however fast the server answers
  const CHARS_PER_S = 15; // a screen reader at its default rate: guidance waits for the lines
  const MAX_HEARD = 50; // lines kept in the list for reading again

  let running = false; // the loop is on (paused or not)
  let paused = false;
  let findingPage = false;
  let speakingUntil = 0;
  let session = "";

  const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

  function newSession() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Lines joined as one announcement, each ending as a sentence so the reader pauses between them.
  function asSpoken(lines) {
    return lines.map((line) => (/[.!?:;]$/.test(line) ? line : `${line}.`)).join(" ");
  }

  // Said through the live region (the listener's screen reader), or in the server's voice.
  function say(text, language = "en") {
    if (voiceBox.checked) {
      toSpeak.push([text, language]);
      if (toSpeak.length === 1) speakAll();
      return;
    }
    speakingUntil = performance.now() + (text.length / CHARS_PER_S) * 1000;
    dl.announce(text);
  }

  async function speakAll() {
    speakingUntil = Infinity; // no guidance over the voice
    while (toSpeak.length) {
      const [text, language] = toSpeak[0];
      const body = new FormData();
      body.append("text", text);
      if (language && language !== "en") body.append("lang", language);
      try {
        let response = await fetch("/api/speak", { method: "POST", body, headers: dl.authHeaders(dl.token()) });
        if (response.status === 422 && body.has("lang")) { // no voice for that language: the default one
          body.delete("lang");
          response = await fetch("/api/speak", { method: "POST", body, headers: dl.authHeaders(dl.token()) });
        }
        if (!response.ok) throw new Error(await dl.errorMessage(response));
        speaker.src = (await response.json()).audio_url;
        await speaker.play();
        await new Promise((resolve) => { speaker.onended = resolve; speaker.onerror = resolve; speaker.onpause = resolve; });
      } catch (error) {
        dl.announce(text); // the screen reader says it instead
      }
      toSpeak.shift();
    }
    speakingUntil = performance.now();
  }

  function heard(lines) {
    for (const line of lines) {
      const item = document.createElement("li");
      item.textContent = line;
      heardList.prepend(item);
    }
    while (heardList.children.length > MAX_HEARD) heardList.lastElementChild.remove();
  }

  async function send(blob, page) {
    const body = new FormData();
    body.append("frame", blob, "frame.jpg");
    body.append("session", session);
    if (page) body.append("page", "true");
    return fetch("/api/live-text", { method: "POST", body, headers: dl.authHeaders(dl.token()) });
  }

  async function loop() {
    let lostSaid = false;
    while (running) {
      if (paused) { await sleep(200); continue; }
      const started = performance.now();
      const blob = await dlCamera.frame(FRAME_SIDE, FRAME_QUALITY);
      if (!blob) { await sleep(300); continue; }
      let response;
      try {
        response = await send(blob, findingPage);
      } catch (_) {
        if (!lostSaid) dl.showError("Could not reach the server. Trying again.");
        lostSaid = true;
        await sleep(2000);
        continue;
      }
      lostSaid = false;
      if (!running || paused) continue;
      if (response.status === 429 || response.status === 503) {
        await sleep(1000 * (Number(response.headers.get("Retry-After")) || 1));
        continue;
      }
      if (!response.ok) {
        dl.showError(await dl.errorMessage(response));
        stopRunning();
        return;
      }
      const data = await response.json();
      if (!running || paused) continue;
      if (data.new.length) {
        say(asSpoken(data.new), data.language || "en");
        heard(data.new);
      } else if (data.guidance && performance.now() >= speakingUntil) {
        say(data.guidance);
      }
      if (findingPage && data.page_ready) await readPage();
      const spent = performance.now() - started;
      if (spent < MIN_GAP_MS) await sleep(MIN_GAP_MS - spent);
    }
  }

  // The whole page is in view: a photo at the camera's full size, read in reading order.
  async function readPage() {
    findingPage = false;
    const blob = await dlCamera.frame();
    if (!blob) return;
    setPaused(true, false);
    say("Page found. Reading it.");
    const body = new FormData();
    body.append("photo", blob, "page.jpg");
    let response;
    try {
      response = await fetch("/api/read", { method: "POST", body, headers: dl.authHeaders(dl.token()) });
    } catch (_) {
      dl.showError("Could not reach the server. Try Read the page again.");
      return;
    }
    if (!response.ok) {
      dl.showError(await dl.errorMessage(response));
      return;
    }
    const data = await response.json();
    const text = (data.text_found || "").trim();
    pageText.textContent = text || "No text was found on the page.";
    pageText.lang = data.text_language || "";
    pageBox.hidden = false;
    const lines = text ? text.split("\n").filter((line) => line.trim()).length : 0;
    // Focus on the text: the screen reader reads it, and the listener can go through it at
    // their own pace. Live text stays paused until Resume.
    dl.announce(`Page read: ${lines} line${lines === 1 ? "" : "s"}. Press Resume to go on with live text.`);
    pageText.focus({ preventScroll: false });
  }

  function setPaused(value, announce = true) {
    paused = value;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (announce) dl.announce(paused ? "Live text paused." : "Live text resumed.");
  }

  function stopRunning() {
    running = false;
    findingPage = false;
    toSpeak.length = 0;
    speaker.pause();
  }

  async function start() {
    if (running) return;
    dlPlayer.unlock(speaker); // inside the tap: the server's voice may then play by itself
    dl.clearMessages();
    document.body.classList.add("live-on");
    startButton.hidden = true;
    panel.hidden = false;
    pageBox.hidden = true;
    heardList.replaceChildren();
    session = newSession();
    speakingUntil = 0;
    setPaused(false, false);
    pauseButton.focus();
    dl.announce("Live text on. Point the camera at text.");
    if (!(await dlCamera.ready())) {
      leave(false);
      return;
    }
    running = true;
    loop();
  }

  function leave(announce = true) {
    stopRunning();
    dlCamera.stop();
    document.body.classList.remove("live-on");
    panel.hidden = true;
    startButton.hidden = !dlCamera.available();
    if (announce) dl.announce("Live text off.");
    (dlCamera.available() ? startButton : document.getElementById("photo")).focus();
  }

  voiceBox.checked = localStorage.getItem("live-voice") === "1";
  voiceBox.addEventListener("change", () => localStorage.setItem("live-voice", voiceBox.checked ? "1" : "0"));
  startButton.addEventListener("click", start);
  pauseButton.addEventListener("click", () => setPaused(!paused));
  leaveButton.addEventListener("click", () => leave());
  pageButton.addEventListener("click", () => {
    findingPage = true;
    pageBox.hidden = true;
    if (paused) setPaused(false, false);
    say("Finding the page. Hold the phone over it.");
  });

  return { start, leave, isOn: () => running };
})();
