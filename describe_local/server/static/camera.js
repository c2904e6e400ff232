// The live camera: a viewfinder under one large shutter button, the first thing in the page
// and focused on load. One tap takes a frame of the video as a JPEG. Where the camera cannot
// be used (no secure context, permission refused, no camera, the camera busy), the page falls
// back to the file buttons ("Take a photo" opens the phone's camera app) with the reason in
// one line, announced.
"use strict";

const dlCamera = (() => {
  const camera = document.getElementById("camera");
  const video = document.getElementById("viewfinder");
  const shutter = document.getElementById("shutter");
  const cameraOff = document.getElementById("camera-off");
  const reason = document.getElementById("camera-reason");
  const takeInput = document.getElementById("photo");
  const chooseBox = document.getElementById("choose-box");
  const JPEG_QUALITY = 0.92;

  // Why there is no live camera, by the error getUserMedia gives.
  const REASONS = {
    NotAllowedError: "permission to use the camera was refused",
    SecurityError: "permission to use the camera was refused",
    NotFoundError: "no camera was found",
    OverconstrainedError: "no camera was found",
    NotReadableError: "the camera is in use by another app or could not start",
    AbortError: "the camera is in use by another app or could not start",
  };

  let stream = null;
  let starting = null; // the promise of the current start, while it runs
  let off = false; // fell back to the file buttons for good
  let onPhoto = () => {};

  function live() {
    return Boolean(stream) && video.readyState >= 2 && video.videoWidth > 0;
  }

  function stop() {
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    video.srcObject = null;
    camera.classList.remove("live");
  }

  function fallBack(why) {
    off = true;
    stop();
    const hadFocus = document.activeElement === shutter || document.activeElement === document.body;
    camera.hidden = true;
    for (const needs of document.querySelectorAll("[data-needs-camera]")) needs.hidden = true;
    cameraOff.hidden = false;
    cameraOff.append(chooseBox); // both file buttons together, first in the page
    reason.textContent = "";
    // Set on the next frame, so that the live region announces it.
    requestAnimationFrame(() => { reason.textContent = `No live camera: ${why}.`; });
    if (hadFocus) takeInput.focus();
  }

  async function open() {
    try {
      const media = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: "environment" }, width: { ideal: 1920 }, height: { ideal: 1080 } },
      });
      if (document.hidden) { // the page went away while the camera opened
        for (const track of media.getTracks()) track.stop();
        return;
      }
      stream = media;
      video.srcObject = media;
      for (const track of media.getVideoTracks()) {
        track.addEventListener("ended", () => { if (stream === media) fallBack("the camera stopped"); });
      }
      await new Promise((resolve) => {
        if (video.readyState >= 2) resolve();
        else video.addEventListener("loadeddata", resolve, { once: true });
        video.play().catch(() => { /* muted, so it plays; the frame is there either way */ });
      });
      camera.classList.add("live");
    } catch (error) {
      fallBack(REASONS[error && error.name] || "the camera could not start");
    }
  }

  function start() {
    if (off || stream || starting) return starting;
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      fallBack("this address is not secure (the live camera needs HTTPS)");
      return null;
    }
    starting = open().finally(() => { starting = null; });
    return starting;
  }

  // The current frame as a JPEG blob (its long side at most `maxSide`), or null.
  function frame(maxSide = Infinity, quality = JPEG_QUALITY) {
    if (!live()) return Promise.resolve(null);
    const scale = Math.min(1, maxSide / Math.max(video.videoWidth, video.videoHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => { canvas.toBlob(resolve, "image/jpeg", quality); });
  }

  async function take() {
    // Inside the tap itself, before anything is awaited: this is what lets the description's
    // audio play by itself when it arrives (see dlPlayer.prime).
    dlPlayer.prime();
    if (!live()) {
      // A stream that gives no frames (the phone paused it, or the camera froze) is opened again.
      if (stream && !starting) stop();
      if (!starting) start();
      if (starting) {
        dl.announce("The camera is starting.");
        await starting;
      }
    }
    const blob = await frame();
    if (!blob) {
      if (!off) dl.showError("The camera gave no picture. Try again.");
      return;
    }
    onPhoto(new File([blob], "photo.jpg", { type: "image/jpeg" }), "took");
  }

  // Where the next photo is taken: the shutter, or the file button where there is no live camera.
  function focusTake() {
    (off ? takeInput : shutter).focus({ preventScroll: true });
  }

  // The camera is let go while the page is not seen (another app may need it), and taken again.
  document.addEventListener("visibilitychange", () => {
    if (off) return;
    if (document.hidden) stop();
    else start();
  });

  shutter.addEventListener("click", take);
  start();

  return {
    focusTake,
    frame,
    // The camera opened (if it can be) and giving frames: true, or false where it cannot be.
    async ready() {
      if (!live()) {
        if (stream && !starting) stop();
        if (!starting) start();
        if (starting) await starting;
      }
      return live();
    },
    available() { return !off; },
    stop,
    // `handler(file, how)` gets each photo taken; `how` is "took".
    onPhoto(handler) { onPhoto = handler; },
  };
})();
