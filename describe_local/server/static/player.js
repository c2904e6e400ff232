// Listening to a description: it plays by itself as soon as it arrives (a streamed one from its
// first words, while the rest is still being made), a large Play/Pause button (before the
// <audio> element's own controls: seek), speeds, keyboard shortcuts, and Download, Share and
// Copy text.
"use strict";

const dlPlayer = (() => {
  const RATES = [0.75, 1, 1.25, 1.5, 2];
  const SEEK_S = 5;
  const player = document.getElementById("player");
  const answerPlayer = document.getElementById("answer-player");
  const listen = document.getElementById("listen");
  const listenMain = document.getElementById("listen-main");
  const playButton = document.getElementById("play");
  const speedButtons = Array.from(document.querySelectorAll(".speed"));
  const download = document.getElementById("download");
  const shareButton = document.getElementById("share");
  const copyButton = document.getElementById("copy");
  const historyPlayer = document.getElementById("history-player");
  const PLAY_WAIT_MS = 5000; // how long the announcement waits for playback to start

  let text = "";
  let liveUrl = null; // the stream the player is on: it grows while the description is made, not seekable
  let wholeUrl = null; // the whole MP3 of the same speech, once known: seekable, for Download and replays
  let silence = null; // a blob: URL of a short silent WAV, made once
  let rate = Number(localStorage.getItem("describe-rate")) || 1;
  if (!RATES.includes(rate)) rate = 1;

  function setRate(value, say) {
    rate = value;
    for (const audio of [player, answerPlayer]) {
      audio.defaultPlaybackRate = value; // kept when a new source loads
      audio.playbackRate = value;
    }
    for (const button of speedButtons) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.rate) === value));
    }
    localStorage.setItem("describe-rate", String(value));
    if (say) dl.announce(`Speed ${value} times.`);
  }

  function updatePlayButton() {
    if (!player.paused && !player.ended) playButton.textContent = "Pause";
    else if (player.currentTime > 0 && !player.ended) playButton.textContent = "Resume";
    else playButton.textContent = "Play";
  }

  // No description, no audio: nothing of the previous photo may be played.
  function clear() {
    player.pause();
    liveUrl = null;
    wholeUrl = null;
    listenMain.hidden = true;
    player.removeAttribute("src");
    player.load();
    listen.hidden = true;
    download.hidden = true;
    download.removeAttribute("href");
    shareButton.hidden = true;
    copyButton.hidden = true;
    text = "";
    updatePlayButton();
  }

  function load(audioUrl, description, stamp) {
    liveUrl = null;
    wholeUrl = audioUrl || null;
    if (audioUrl) {
      player.src = audioUrl;
      player.load();
      player.playbackRate = rate;
    }
    finish(audioUrl, description, stamp);
  }

  // The description's text and whole MP3 are known: Download, Share and Copy point at them.
  function finish(audioUrl, description, stamp) {
    text = description;
    listen.hidden = !audioUrl;
    listenMain.hidden = !audioUrl;
    download.hidden = !audioUrl;
    shareButton.hidden = !("share" in navigator);
    copyButton.hidden = false;
    if (audioUrl) {
      download.href = audioUrl;
      download.download = `description-${stamp}.mp3`;
    }
    updatePlayButton();
  }

  // A streamed description: the player is set to its stream (the tap that took the photo
  // primed it) and starts at once, before the text exists. Resolves as playNow does.
  function live(url) {
    liveUrl = url;
    wholeUrl = null;
    text = "";
    listen.hidden = false;
    listenMain.hidden = false;
    player.src = url;
    player.playbackRate = rate;
    updatePlayButton();
    return playNow();
  }

  function onLive() {
    return Boolean(liveUrl) && player.getAttribute("src") === liveUrl;
  }

  // Whether the stream is heard now, or waits for its next part (not paused by the listener).
  function livePlaying() {
    return onLive() && !player.paused && !player.ended;
  }

  // The streamed description is done: its whole MP3 is `audioUrl`. The stream goes on playing
  // where it plays (reloading it would cut the speech); Download, Share and later replays take the
  // whole MP3, and the player moves to it once the stream ends, or at once where the stream is
  // not playing (the browser refused it, it failed, or another sound took its place).
  function done(audioUrl, description, stamp) {
    wholeUrl = audioUrl || null;
    if (!onLive() || player.paused || player.error) {
      const at = onLive() && !player.ended ? player.currentTime : 0;
      liveUrl = null;
      if (wholeUrl) toWhole(at, false);
      else player.removeAttribute("src");
    }
    finish(wholeUrl, description, stamp);
  }

  // From the stream to the whole MP3 at `at` seconds (the stream cannot seek): playing on if
  // `resume`. The position is the element's default playback start position until it loads.
  function toWhole(at, resume) {
    liveUrl = null;
    player.src = wholeUrl;
    player.playbackRate = rate;
    if (at > 0) player.currentTime = at;
    if (resume) player.play().catch(() => updatePlayButton());
  }

  // A short silent WAV (8 kHz, 16-bit mono), as a blob: URL, which the page's policy allows.
  function silentWav() {
    const samples = 800; // 0.1 s
    const buffer = new ArrayBuffer(44 + samples * 2);
    const view = new DataView(buffer);
    const ascii = (at, word) => { for (let i = 0; i < word.length; i += 1) view.setUint8(at + i, word.charCodeAt(i)); };
    ascii(0, "RIFF"); view.setUint32(4, 36 + samples * 2, true); ascii(8, "WAVE");
    ascii(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
    view.setUint32(24, 8000, true); view.setUint32(28, 16000, true); view.setUint16(32, 2, true);
    view.setUint16(34, 16, true); ascii(36, "data"); view.setUint32(40, samples * 2, true);
    return URL.createObjectURL(new Blob([buffer], { type: "audio/wav" }));
  }

  // Called inside the tap that takes or chooses a photo, before anything is awaited: a phone
  // lets an <audio> element play later without a tap only once it has played within one, so
  // it plays a moment of silence now and the description when it arrives, seconds later.
  function prime() {
    if (!silence) silence = silentWav();
    historyPlayer.pause();
    player.src = silence;
    const started = player.play();
    if (started) started.catch(() => { /* not allowed here either: Play stays */ });
  }

  // Lets `audio` (another element) play later without a tap: call it inside a tap.
  function unlock(audio) {
    if (!silence) silence = silentWav();
    audio.src = silence;
    const started = audio.play();
    if (started) started.catch(() => { /* not allowed: it will be refused later, and said so */ });
  }

  // Starts the description at once; resolves true once it plays, false where the browser
  // refused (no tap unlocked it), or null where it has not started after PLAY_WAIT_MS.
  function playNow() {
    if (!player.getAttribute("src")) return Promise.resolve(false);
    const started = player.play().then(() => true, () => false);
    const late = new Promise((resolve) => { setTimeout(() => resolve(null), PLAY_WAIT_MS); });
    return Promise.race([started, late]);
  }

  async function toggle(audio) {
    try {
      if (audio.paused || audio.ended) await audio.play(); // from where it was paused
      else audio.pause();
    } catch (error) {
      dl.showError(`The audio could not be played (${error.name}). The text is shown above.`);
    }
  }

  function seek(audio, seconds) {
    if (audio === player && onLive()) {
      // The stream cannot seek: the whole MP3 can, once the description is done.
      if (wholeUrl) toWhole(Math.max(0, player.currentTime + seconds), !player.paused && !player.ended);
      return;
    }
    const end = Number.isFinite(audio.duration) ? audio.duration : audio.currentTime + seconds;
    audio.currentTime = Math.min(Math.max(0, audio.currentTime + seconds), end);
  }

  function nextRate(step) {
    const index = RATES.indexOf(rate) + step;
    if (index >= 0 && index < RATES.length) setRate(RATES[index], true);
  }

  // Single keys act only while focus is in the description or the answer (WCAG 2.1.4),
  // never while typing, and never with a modifier (those belong to the browser and the
  // screen reader).
  function shortcut(event) {
    if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
    const target = event.target;
    if (!(target instanceof Element) || target.closest("input, select, textarea, [contenteditable]")) return;
    const inAnswer = target.closest("#ask");
    if (!inAnswer && !target.closest("#result")) return;
    const audio = inAnswer && answerPlayer.getAttribute("src") ? answerPlayer : player;
    if (!audio.getAttribute("src")) return;
    const actions = {
      k: () => toggle(audio),
      j: () => seek(audio, -SEEK_S),
      l: () => seek(audio, SEEK_S),
      s: () => nextRate(-1),
      f: () => nextRate(1),
    };
    const action = actions[event.key.toLowerCase()];
    if (action) {
      event.preventDefault();
      action();
    }
  }

  async function share() {
    const data = { title: "Photo description", text };
    try {
      const href = download.getAttribute("href");
      if (href && navigator.canShare) {
        const blob = await (await fetch(href)).blob();
        const file = new File([blob], download.download || "description.mp3", { type: "audio/mpeg" });
        if (navigator.canShare({ files: [file] })) data.files = [file];
      }
      await navigator.share(data);
    } catch (error) {
      if (error.name !== "AbortError") dl.showError("Sharing did not work. Copy the text instead.");
    }
  }

  async function copy() {
    if (await dl.copyText(text)) dl.announce("Text copied.");
    else dl.showError("The text could not be copied. Select it above and copy it.");
  }

  playButton.addEventListener("click", () => toggle(player));
  for (const event of ["play", "playing", "pause", "ended", "emptied", "seeked"]) {
    player.addEventListener(event, updatePlayButton);
  }
  player.addEventListener("play", () => { historyPlayer.pause(); answerPlayer.pause(); });
  player.addEventListener("ended", () => {
    if (onLive() && wholeUrl) toWhole(0, false); // played again from the whole MP3, which can seek
  });
  player.addEventListener("error", () => {
    if (onLive()) {
      // The stream broke off: the whole MP3 takes over where it was, once there is one; before
      // that, the description's events say whether it failed (describe.js).
      if (wholeUrl) toWhole(player.currentTime, true);
      return;
    }
    if (player.getAttribute("src") && player.getAttribute("src") !== silence) {
      dl.showError("The audio is no longer available. Take the photo again to hear it.");
    }
  });
  for (const button of speedButtons) {
    button.addEventListener("click", () => setRate(Number(button.dataset.rate), true));
  }
  shareButton.addEventListener("click", share);
  copyButton.addEventListener("click", copy);
  document.addEventListener("keydown", shortcut);
  setRate(rate, false);

  return { clear, load, live, livePlaying, done, prime, playNow, setRate, unlock };
})();
