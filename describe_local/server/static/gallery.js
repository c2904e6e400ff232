// The gallery page: list, add and remove known people (admin token needed).
"use strict";

(() => {
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("admin-token");
  const addForm = document.getElementById("add-form");
  const nameInput = document.getElementById("name");
  const photosInput = document.getElementById("photos");
  const list = document.getElementById("people");
  const empty = document.getElementById("people-empty");

  // Kept for this tab only: closing it forgets the token.
  tokenInput.value = sessionStorage.getItem("admin-token") || "";
  const token = () => tokenInput.value.trim();

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
      dl.showError(await dl.errorMessage(response));
      return false;
    }
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
    dl.clearMessages();
    sessionStorage.setItem("admin-token", token());
    try {
      await refresh();
    } catch (_) {
      dl.showError("Could not reach the server. Check the connection and try again.");
    }
  });

  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    dl.clearMessages();
    const name = nameInput.value.trim();
    if (!name) {
      dl.showError("Enter the person's name.");
      nameInput.focus();
      return;
    }
    if (!photosInput.files.length) {
      dl.showError("Choose at least one photo of the person.");
      photosInput.focus();
      return;
    }
    const body = new FormData();
    body.append("name", name);
    for (const file of photosInput.files) body.append("photos", file, file.name);
    dl.announce(`Adding ${name}. Checking the photos for faces.`);
    try {
      const response = await fetch("/api/gallery/people", {
        method: "POST",
        body,
        headers: dl.authHeaders(token()),
      });
      if (!response.ok) {
        dl.announce("");
        dl.showError(await dl.errorMessage(response));
        return;
      }
      const data = await response.json();
      addForm.reset();
      await refresh({ quiet: true });
      dl.announce(`Added ${data.name}: ${data.photos} photo${data.photos === 1 ? "" : "s"} in all.`);
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
        dl.showError(await dl.errorMessage(response));
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
