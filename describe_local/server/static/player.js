// Listening to a description: the <audio> element's own controls (pause,
// resume, seek), a large Play/Pause button, speeds, keyboard shortcuts, and
// Download, Share and Copy text.
"use strict";

const dlPlayer = (() => {
  const RATES = [0.75, 1, 1.25, 1.5, 2];
  const SEEK_S = 5;
  const player = document.getElementById("player");
  const answerPlayer = document.getElementById("answer-player");
  const listen = document.getElementById("listen");
  const playButton = document.getElementById("play");
  const speedButtons = Array.from(document.querySelectorAll(".speed"));
  const download = document.getElementById("download");
  const shareButton = document.getElementById("share");
  const copyButton = document.getElementById("copy");

  let text = "";
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
    player.removeAttribute("src");
    player.load();
    listen.hidden = true;
    download.hidden = true;
    download.removeAttribute("href");
    shareButton.hidden = true;
    text = "";
    updatePlayButton();
  }

  function load(audioUrl, description, stamp) {
    text = description;
    listen.hidden = !audioUrl;
    download.hidden = !audioUrl;
    shareButton.hidden = !("share" in navigator);
    if (audioUrl) {
      player.src = audioUrl;
      player.load();
      player.playbackRate = rate;
      download.href = audioUrl;
      download.download = `description-${stamp}.mp3`;
    }
    updatePlayButton();
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
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      // No clipboard API (plain HTTP) or no permission: the old way.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.append(area);
      area.select();
      const done = document.execCommand("copy");
      area.remove();
      if (!done) {
        dl.showError("The text could not be copied. Select it above and copy it.");
        return;
      }
    }
    dl.announce("Text copied.");
  }

  playButton.addEventListener("click", () => toggle(player));
  for (const event of ["play", "playing", "pause", "ended", "emptied", "seeked"]) {
    player.addEventListener(event, updatePlayButton);
  }
  player.addEventListener("error", () => {
    if (player.getAttribute("src")) {
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

  return { clear, load, setRate };
})();
