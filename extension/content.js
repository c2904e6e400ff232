// describe-local alt text: the content script, in every web page.
//
// Finds the visible images (at least 48 x 48 CSS pixels) whose alt is missing or is only a
// file name ("IMG_0042.jpg"), asks the background for alt text, sets it, and marks what it set
// with data-describe-local-alt (the alt it wrote), so that a screen reader speaks it and an
// author can tell it from their own. alt="" is left alone: it marks an image as decorative.
// Images added or changed later are seen too, and images that load lazily when they come into
// view (an IntersectionObserver watches those not ready yet). Images that failed while the
// server was down are tried again when the background says it answers again. The keyboard
// shortcut (see manifest.json) asks for the image that has focus, whatever its alt, and says
// the alt and then only what the long description adds to it, in a live region.
(() => {
  "use strict";

  const api = globalThis.browser ?? globalThis.chrome;
  const MIN_SIDE = 48;
  const MARK = "data-describe-local-alt";
  const LIVE_ID = "describe-local-live";
  const IMAGE_FILE = /^[^\s/\\]+\.(?:jpe?g|png|gif|webp|avif|bmp|tiff?|heic|heif|svg)$/i;
  const CAMERA_NAME = /^(?:img|dsc|dscn|dscf|pxl|mvimg|photo|image|screenshot)[\s_-]*\d[\w\s-]*$/i;
  const described = new WeakMap(); // img -> the URL it was described (or is being described) for
  const failed = new Set(); // images whose description failed: tried again on "retry"
  const watched = new WeakSet(); // images the IntersectionObserver waits for
  const inView = new WeakSet(); // images it has seen come into view
  // Words that carry no content: "There are three people in the image." adds nothing to "Three people."
  const FILLER = new Set(("a an the there is are was were in on of at with and image picture photo it its this "
    + "that text reading shows showing").split(" "));
  let lastHovered = null;
  const lazy = "IntersectionObserver" in globalThis ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      lazy.unobserve(entry.target);
      inView.add(entry.target); // seen in view once: not watched again (a tiny image stays tiny)
      consider(entry.target);
    }
  }, { rootMargin: "200px" }) : null;

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
      reply = await api.runtime.sendMessage({ type: "describe", src, onDemand });
    } catch {
      reply = { ok: false, error: "the extension could not be reached" };
    }
    if (sourceOf(img) !== src) return; // the image changed meanwhile: it is seen again
    if (!reply?.ok) {
      described.delete(img);
      if (reply?.serverDown && !onDemand) failed.add(img);
      if (onDemand) say(`No description: ${reply?.error ?? "unknown error"}.`);
      return;
    }
    failed.delete(img);
    if (reply.alt && needsAlt(img)) {
      img.setAttribute("alt", reply.alt);
      img.setAttribute(MARK, reply.alt);
    }
    if (onDemand) {
      say(reply.alt ? [reply.alt, ...beyond(reply.alt, reply.longDescription)].join(" ")
        : "I found nothing to describe in this image.");
    }
  }

  function contentWords(text) {
    return (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((word) => !FILLER.has(word));
  }

  // The sentences of the long description that say something the alt did not.
  function beyond(alt, long) {
    const said = new Set(contentWords(alt));
    const sentences = (long || "").match(/[^.!?…]+(?:[.!?…]+['"’”)]*|$)/g) ?? [];
    return sentences.map((s) => s.trim()).filter((s) => s && !contentWords(s).every((word) => said.has(word)));
  }

  function consider(img) {
    if (!(img instanceof HTMLImageElement) || hiddenFromScreenReaders(img) || !needsAlt(img)) return;
    if (!img.complete || img.naturalWidth === 0) {
      img.addEventListener("load", () => consider(img), { once: true });
      waitForView(img); // loading="lazy": it loads (and is seen) when it comes near the view
      return;
    }
    if (visibleAndBigEnough(img)) describe(img);
    else waitForView(img); // no size yet (a lazy loader's placeholder): seen again when in view
  }

  function waitForView(img) {
    if (!lazy || watched.has(img) || inView.has(img)) return;
    watched.add(img);
    lazy.observe(img);
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
    if (message?.type === "retry") { // the server answers again
      const again = [...failed];
      failed.clear();
      again.forEach((img) => { described.delete(img); consider(img); });
      return false;
    }
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
