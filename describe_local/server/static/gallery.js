// The gallery page: list, add and remove known people (admin token needed).
"use strict";

(() => {
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("admin-token");
  const tokenError = document.getElementById("admin-token-error");
  const addForm = document.getElementById("add-form");
  const addButton = document.getElementById("add-button");
  const addLocked = document.getElementById("add-locked");
  const nameInput = document.getElementById("name");
  const photosInput = document.getElementById("photos");
  const list = document.getElementById("people");
  const empty = document.getElementById("people-empty");

  // Kept for this tab only: closing it forgets the token.
  tokenInput.value = sessionStorage.getItem("admin-token") || "";
  const token = () => tokenInput.value.trim();

  // The page's own words about the token: they keep the commands that the server's messages
  // lose (dl.plainWords), since only whoever runs the server can get a token.
  const MISSING_TOKEN = "Enter the admin token first.";
  const WRONG_TOKEN = "That admin token is wrong. Check it and enter it again, or get a new one: "
    + "restart the server with describe-local serve --reset-admin-token.";

  // "Add person" stays in the page and in the screen reader's reach without a token, marked
  // unavailable (aria-disabled, not disabled, so that it can still say why when pressed) and
  // described by the visible "Enter the admin token above first".
  function updateAddButton() {
    const locked = !token();
    addButton.setAttribute("aria-disabled", String(locked));
    addLocked.hidden = !locked;
    if (locked) addButton.setAttribute("aria-describedby", "add-locked");
    else addButton.removeAttribute("aria-describedby");
  }

  // No token: said once, by the field itself. Focus goes there, and the field is read with the
  // message and the hint on where the token comes from; nothing is announced besides, which a
  // screen reader would read over the field or say twice.
  function askForToken() {
    dl.clearMessages();
    tokenError.textContent = MISSING_TOKEN;
    tokenError.hidden = false;
    tokenInput.setAttribute("aria-invalid", "true");
    tokenInput.setAttribute("aria-describedby", "admin-token-error admin-token-hint");
    tokenInput.focus();
  }

  function tokenLooksFine() {
    tokenError.textContent = "";
    tokenError.hidden = true;
    tokenInput.removeAttribute("aria-invalid");
    tokenInput.setAttribute("aria-describedby", "admin-token-hint");
  }

  // A refused token: the server's answer, announced as an alert; the field is marked.
  function tokenRefused() {
    sessionStorage.removeItem("admin-token");
    tokenLooksFine();
    tokenInput.setAttribute("aria-invalid", "true");
    dl.showError(WRONG_TOKEN, { plain: false });
  }

  // A failed response: a 401 for a token that was sent is a wrong token.
  async function showFailure(response) {
    if (response.status === 401 && token()) {
      tokenRefused();
      return;
    }
    if (response.status === 401) {
      askForToken();
      return;
    }
    dl.showError(await dl.errorMessage(response));
  }

  tokenInput.addEventListener("input", () => {
    updateAddButton();
    if (token()) tokenLooksFine();  // a new token: no longer the missing or the wrong one
  });
  updateAddButton();

  function render(people) {
    list.replaceChildren(...people.map(({ name, photos }) => {
      const item = document.createElement("li");
      const label = document.createElement("span");
      const strong = document.createElement("strong");
      strong.textContent = name;
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = ` (${photos} photo${photos === 1 ? "" : "s"})`;
      label.append(strong, count);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "button secondary";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${name}`);
      remove.addEventListener("click", () => removePerson(name));
      item.append(label, remove);
      return item;
    }));
    empty.textContent = people.length ? "" : "No one has been added yet.";
    empty.hidden = people.length > 0;
  }

  async function refresh({ quiet = false } = {}) {
    const response = await fetch("/api/gallery/people", { headers: dl.authHeaders(token()), cache: "no-store" });
    if (!response.ok) {
      await showFailure(response);
      return false;
    }
    tokenLooksFine();
    sessionStorage.setItem("admin-token", token());  // kept once the server took it
    const data = await response.json();
    render(data.people);
    if (!quiet) {
      const n = data.people.length;
      dl.announce(n ? `${n} ${n === 1 ? "person" : "people"} in the gallery.` : "No one has been added yet.");
    }
    return true;
  }

  tokenForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!token()) {
      askForToken();
      return;
    }
    dl.clearMessages();
    try {
      await refresh();
    } catch (_) {
      dl.showError("Could not reach the server. Check the connection and try again.");
    }
  });

  const photoCount = (n) => `${n} photo${n === 1 ? "" : "s"}`;

  // "cat.jpg: no face found. notes.jpg: not an image." A sentence a photo: a reason may have
  // its own commas and semicolons.
  function refusedSentences(refused) {
    return refused.map((r) => `${r.photo}: ${dl.plainWords(r.reason).replace(/[.\s]+$/, "")}.`).join(" ");
  }

  // "Added Ada: 2 photos, 3 in all. 2 photos were not added. cat.jpg: no face found. ..."
  function addedSentence(done) {
    let text = `Added ${done.name}: ${photoCount(done.added)}, ${done.photos} in all.`;
    if (done.refused.length) {
      const were = done.refused.length === 1 ? "was" : "were";
      text += ` ${photoCount(done.refused.length)} ${were} not added. ${refusedSentences(done.refused)}`;
    }
    return text;
  }

  function postPhotos(name, files) {
    const body = new FormData();
    body.append("name", name);
    for (const file of files) body.append("photos", file, file.name);
    return fetch("/api/gallery/people", { method: "POST", body, headers: dl.authHeaders(token()) });
  }

  // Takes one answer of the server into `done`; false for an answer that is not about the
  // photos (a wrong token, a busy server, a refused name), which ends the adding.
  async function takeAnswer(done, response, file) {
    const data = await response.json().catch(() => ({}));
    if (response.ok) {
      Object.assign(done, { name: data.name, photos: data.photos });
      done.added += data.added;
      done.refused.push(...(data.refused || []));
      return true;
    }
    if (response.status === 422 && Array.isArray(data.refused)) {  // every photo refused
      done.refused.push(...data.refused);
      return true;
    }
    if (response.status === 413 && file) {  // this photo alone is over the upload limit
      done.refused.push({ photo: file.name, reason: data.detail || "too large" });
      return true;
    }
    return false;
  }

  // All the photos in one request; if together they are over the server's upload limit, one
  // photo a request, so that only a photo over it on its own is refused. The result is the
  // whole batch's: how many were added and each refused photo with why; or the answer that
  // stopped it.
  async function addPhotos(name, files) {
    const done = { name, added: 0, photos: 0, refused: [] };
    const response = await postPhotos(name, files);
    if (response.status === 413 && files.length > 1) {
      for (const file of files) {
        const one = await postPhotos(name, [file]);
        if (!await takeAnswer(done, one.clone(), file)) return { done, stopped: one };
      }
      return { done };
    }
    const single = files.length === 1 ? files[0] : null;
    if (!await takeAnswer(done, response.clone(), single)) return { done, stopped: response };
    return { done };
  }

  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!token()) {
      askForToken();
      return;
    }
    dl.clearMessages();
    const name = nameInput.value.trim();
    if (!name) {
      dl.showError("Enter the person's name.");
      nameInput.focus();
      return;
    }
    const files = Array.from(photosInput.files);
    if (!files.length) {
      dl.showError("Choose at least one photo of the person.");
      photosInput.focus();
      return;
    }
    dl.announce(`Adding ${name}. Checking the photos for faces.`);
    try {
      const { done, stopped } = await addPhotos(name, files);
      if (done.added) await refresh({ quiet: true });
      if (stopped) {
        dl.announce(done.added ? addedSentence(done) : "");
        await showFailure(stopped);
        return;
      }
      if (!done.added) {
        // One alert for the whole batch, naming each photo and why.
        dl.announce("");
        dl.showError(`Nothing was added. ${refusedSentences(done.refused)}`, { plain: false });
        return;
      }
      // Some photos refused: the name stays, for other photos of the same person.
      if (done.refused.length) photosInput.value = "";
      else addForm.reset();
      // One announcement for the whole batch: what was added, and each refused photo with why.
      dl.announce(addedSentence(done));
    } catch (_) {
      dl.announce("");
      dl.showError("Could not reach the server. Check the connection and try again.");
    }
  });

  async function removePerson(name) {
    if (!window.confirm(`Remove ${name} and their photos?`)) return;
    dl.clearMessages();
    try {
      const response = await fetch(`/api/gallery/people/${encodeURIComponent(name)}`, {
        method: "DELETE",
        headers: dl.authHeaders(token()),
      });
      if (!response.ok) {
        await showFailure(response);
        return;
      }
      await refresh({ quiet: true });
      dl.announce(`Removed ${name}.`);
      document.getElementById("people-title").focus();
    } catch (_) {
      dl.showError("Could not reach the server. Check the connection and try again.");
    }
  }

  if (token()) refresh({ quiet: true }).catch(() => {});
})();
