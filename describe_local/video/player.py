"""The video page's player script: the audio description switch, extended description, text on request.

The page plays the video with its own sound, and beside it one audio element holding every narration
one after another (``NAME.description.mp3``); a table of cues says when each is due on the video's
timeline (``at``) and where it lies in that file (``from``..``to``). This works in every browser,
Chromium included, which cannot switch an MP4's audio tracks. At a cue the script plays that stretch
of the narration with the video's sound lowered; a cue marked ``hold`` (it found no pause in the
dialogue) pauses the video while it is spoken and resumes it after, when "Pause the video for
descriptions that need it" is on, and is skipped when it is off (as in the described MP4). A line
cut short to fit its pause (``short``) is followed by its whole text as a held cue: one or the other
is spoken, as that switch says.
``window.describeLog`` records each narration started (for tests, and for anyone curious).
"""

PLAYER_JS = r"""
"use strict";
const video = document.getElementById("video");
const voice = document.getElementById("narration");
const describe = document.getElementById("describe");
const extended = document.getElementById("extended");
const showText = document.getElementById("show-text");
const now = document.getElementById("now");
const cues = JSON.parse(document.getElementById("cues").textContent);
const DUCK = 0.3;  // the video's own sound under a narration
const LATE_S = 1.0;  // a cue found later than this after its time (a seek past it) is not spoken
const log = window.describeLog = [];
let next = 0, speaking = null, holding = false, timer = 0;

function stop(resume) {
  clearInterval(timer);
  timer = 0;
  if (speaking) voice.pause();
  speaking = null;
  video.volume = 1;
  if (holding) {
    holding = false;
    if (resume) video.play();
  }
  shown();
}

function rewind() {  // after a seek, the next cue is the first at or after the playhead
  stop(false);
  const t = video.currentTime;
  next = cues.findIndex((c) => c.at >= t - 0.05);
  if (next < 0) next = cues.length;
}

function speak(cue, index) {
  speaking = cue;
  voice.currentTime = cue.from;
  if (cue.hold) {
    holding = true;
    video.pause();
  } else {
    video.volume = DUCK;
  }
  log.push({cue: index, video: video.currentTime, at: cue.at, hold: cue.hold});
  const started = voice.play();
  if (started) started.catch(() => stop(true));
  timer = setInterval(() => {
    if (voice.ended || voice.currentTime >= cue.to - 0.02) stop(true);
  }, 40);
  shown();
}

function tick() {
  if (speaking || !describe.checked) return;
  const t = video.currentTime;
  while (next < cues.length && cues[next].at <= t) {
    const index = next++;
    const cue = cues[index];
    if (cue.hold ? !extended.checked : cue.short && extended.checked) continue;
    if (t - cue.at > LATE_S) continue;
    speak(cue, index);
    return;
  }
}

function shown() {  // the description as text: the one spoken, or the one whose time the video is in
  let text = "";
  if (showText.checked) {
    const t = video.currentTime;
    const cue = speaking || cues.find((c) => c.at <= t && t < c.at + (c.to - c.from));
    text = cue ? cue.text : "";
  }
  now.hidden = !showText.checked;
  if (now.textContent !== text) now.textContent = text;
}

video.addEventListener("timeupdate", () => { tick(); shown(); });
video.addEventListener("seeked", rewind);
video.addEventListener("play", () => {
  if (holding) stop(false);  // play pressed during a held description: go on without it
  else if (speaking) voice.play();
});
video.addEventListener("pause", () => {
  if (speaking && !holding) voice.pause();
});
setInterval(() => { if (!video.paused) tick(); }, 50);  // timeupdate alone comes only every quarter second
describe.addEventListener("change", () => { if (!describe.checked) stop(true); else rewind(); });
extended.addEventListener("change", () => { if (!extended.checked && holding) stop(true); });
showText.addEventListener("change", shown);
for (const link of document.querySelectorAll("a[data-cue]")) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    video.currentTime = cues[Number(link.dataset.cue)].at;
    video.focus();
  });
}
"""
