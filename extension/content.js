// describe-local alt text: the content script, in every web page.
//
// Finds the visible images (at least 48 x 48 CSS pixels) whose alt is missing or is only a
// file name ("IMG_0042.jpg"), asks the background for alt text, sets it, and marks what it set
// with data-describe-local-alt (the alt it wrote), so that a screen reader speaks it and an
// author can tell it from their own. alt="" is left alone: it marks an image as decorative.
// Images added or changed later are seen too. The keyboard shortcut (see manifest.json) asks
// for the image that has focus, whatever its alt, and says the description in a live region.
(() => {
  "use strict";

  const api = globalThis.browser ?? globalThis.chrome;
  const MIN_SIDE = 48;
  const MARK = "data-describe-local-alt";
  const LIVE_ID = "describe-local-live";
  const IMAGE_FILE = /^[^\s/\\]+\.(?:jpe?g|png|gif|webp|avif|bmp|tiff?|heic|heif|svg)$/i;
  const CAMERA_NAME = /^(?:img|dsc|dscn|dscf|pxl|mvimg|photo|image|screenshot)[\s_-]*\d[\w\s-]*$/i;
  const described = new WeakMap(); // img -> the URL it was described (or is being described) for
  let lastHovered = null;

  function sourceOf(img) {
    return img.currentSrc || img.src || "";
  }

  function fileNameOf(url) {
    try {
      return decodeURIComponent(new URL(url, document.baseURI).pathname.split("/").pop() || "");
    } catch {
      return "";
    }
  }

  // No alt, or one that is only a file name: a screen reader would read out the file name.
  function needsAlt(img) {
    if (!img.hasAttribute("alt")) return true;
    if (img.hasAttribute(MARK)) return img.getAttribute("alt") === img.getAttribute(MARK);
    const alt = img.getAttribute("alt").trim();
    if (!alt) return false;
    return IMAGE_FILE.test(alt) || CAMERA_NAME.test(alt) || alt.toLowerCase() === fileNameOf(sourceOf(img)).toLowerCase();
  }

  function hiddenFromScreenReaders(img) {
    const role = (img.getAttribute("role") || "").toLowerCase();
    return role === "presentation" || role === "none" || img.closest("[aria-hidden='true']") !== null;
  }

  function visibleAndBigEnough(img) {
    if (!img.isConnected || !img.complete || img.naturalWidth === 0) return false;
    const box = img.getBoundingClientRect();
    if (box.width < MIN_SIDE || box.height < MIN_SIDE) return false;
    const style = getComputedStyle(img);
    return style.display !== "none" && style.visibility !== "hidden" && Number(style.opacity) > 0;
  }

  function liveRegion() {
    let region = document.getElementById(LIVE_ID);
    if (!region) {
      region = document.createElement("div");
      region.id = LIVE_ID;
      region.setAttribute("role", "status");
      // Visually hidden, heard by screen readers.
      region.style.cssText = "position:absolute;width:1px;height:1px;margin:-1px;padding:0;border:0;"
        + "overflow:hidden;clip:rect(0 0 0 0);clip-path:inset(50%);white-space:nowrap;";
      document.body.append(region);
    }
    return region;
  }

  function say(text) {
    const region = liveRegion();
    region.textContent = "";
    setTimeout(() => { region.textContent = text; }, 50); // a change, so that it is announced
  }

  async function describe(img, { onDemand = false } = {}) {
    const src = sourceOf(img);
    if (!/^(?:https?|data):/i.test(src)) {
      if (onDemand) say("This image cannot be described.");
      return;
    }
    if (!onDemand && described.get(img) === src) return;
    described.set(img, src);
    let reply;
    try {
      reply = await api.runtime.sendMessage({ type: "describe", src });
    } catch {
      reply = { ok: false, error: "the extension could not be reached" };
    }
    if (sourceOf(img) !== src) return; // the image changed meanwhile: it is seen again
    if (!reply?.ok) {
      described.delete(img);
      if (onDemand) say(`No description: ${reply?.error ?? "unknown error"}.`);
      return;
    }
    if (reply.alt && needsAlt(img)) {
      img.setAttribute("alt", reply.alt);
      img.setAttribute(MARK, reply.alt);
    }
    if (onDemand) {
      say(reply.alt ? [reply.alt, reply.longDescription].filter(Boolean).join(" ") : "I found nothing to describe in this image.");
    }
  }

  function consider(img) {
    if (!(img instanceof HTMLImageElement) || hiddenFromScreenReaders(img) || !needsAlt(img)) return;
    if (!img.complete || img.naturalWidth === 0) {
      img.addEventListener("load", () => consider(img), { once: true });
      return;
    }
    if (visibleAndBigEnough(img)) describe(img);
  }

  function scan(root) {
    if (root instanceof HTMLImageElement) consider(root);
    root.querySelectorAll?.("img").forEach(consider);
  }

  // The image the user means: the focused element, an image inside it (a linked image),
  // the image at the text selection, or the last one under the mouse.
  function focusedImage() {
    const active = document.activeElement;
    if (active instanceof HTMLImageElement) return active;
    const inside = active?.querySelector?.("img");
    if (inside && active !== document.body) return inside;
    const anchor = document.getSelection()?.anchorNode;
    const element = anchor?.nodeType === Node.ELEMENT_NODE ? anchor : anchor?.parentElement;
    const near = element?.closest?.("img") ?? element?.querySelector?.("img");
    return near || lastHovered;
  }

  api.runtime.onMessage.addListener((message) => {
    if (message?.type !== "describe-focused") return false;
    const img = focusedImage();
    if (img) describe(img, { onDemand: true });
    else say("No image has focus.");
    return false;
  });

  document.addEventListener("mouseover", (event) => {
    if (event.target instanceof HTMLImageElement) lastHovered = event.target;
  }, { passive: true });

  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === "attributes") {
        if (change.attributeName !== "alt" || !change.target.hasAttribute(MARK)) consider(change.target);
      } else {
        change.addedNodes.forEach((node) => { if (node.nodeType === Node.ELEMENT_NODE) scan(node); });
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["src", "srcset", "alt"] });

  scan(document);
})();
