// Asking about the photo just described: the server keeps it for a few
// minutes under the id that came with the description.
"use strict";

const dlAsk = (() => {
  const section = document.getElementById("ask");
  const form = document.getElementById("ask-form");
  const question = document.getElementById("question");
  const askButton = document.getElementById("ask-button");
  const answerBox = document.getElementById("answer-box");
  const answer = document.getElementById("answer");
  const answerPlayer = document.getElementById("answer-player");

  let photoId = null;
  let busy = false;

  function clearAnswer() {
    answerPlayer.pause();
    answerPlayer.removeAttribute("src");
    answerPlayer.load();
    answer.textContent = "";
    answerBox.hidden = true;
  }

  // A new photo: the questions about the last one are over.
  function reset() {
    photoId = null;
    section.hidden = true;
    question.value = "";
    clearAnswer();
  }

  // Offer questions about the photo kept under `id` (none where the server
  // has no model that answers them).
  function offer(id) {
    photoId = id || null;
    section.hidden = !photoId;
  }

  async function ask(event) {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) {
      dl.showError("Type or dictate a question about the photo first.");
      question.focus();
      return;
    }
    if (busy || !photoId) return;
    busy = true;
    askButton.disabled = true;
    dl.clearMessages();
    clearAnswer();
    answerBox.setAttribute("aria-busy", "true");
    dl.announce("Asking. This takes a few seconds.");
    const body = new FormData();
    body.append("photo_id", photoId);
    body.append("question", text);
    try {
      const response = await fetch("/api/ask", { method: "POST", body, headers: dl.authHeaders(dl.token()) });
      if (!response.ok) {
        dl.announce("");
        dl.showError(await dl.errorMessage(response));
        if (response.status === 404 || response.status === 410) reset(); // the photo is gone
        return;
      }
      const data = await response.json();
      answer.textContent = data.answer;
      answer.lang = "en";
      if (data.audio_url) {
        answerPlayer.src = data.audio_url;
        answerPlayer.load();
      }
      answerPlayer.hidden = !data.audio_url;
      answerBox.hidden = false;
      dl.announce(data.audio_url ? "Answer ready. Its audio player follows it." : "Answer ready.");
      answer.focus({ preventScroll: true });
      answerBox.scrollIntoView({ block: "start" });
    } catch (_) {
      dl.announce("");
      dl.showError("Could not reach the server. Check the connection and ask again.");
    } finally {
      answerBox.removeAttribute("aria-busy");
      busy = false;
      askButton.disabled = false;
    }
  }

  form.addEventListener("submit", ask);
  return { reset, offer };
})();
