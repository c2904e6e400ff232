// The API docs (Swagger UI): a name for each form control Swagger UI renders
// without one (the "Try it out" fields), taken from its parameter's row, so
// that a screen reader says what to type.
"use strict";

(() => {
  function nameOf(control) {
    const row = control.closest("tr[data-param-name]");
    if (row) return row.dataset.paramName;
    const property = control.closest("tr") && control.closest("tr").querySelector(".parameter__name");
    if (property) return property.textContent.replace("*", "").trim();
    if (control.type === "file") return "File to send";
    return control.getAttribute("placeholder") || "Value";
  }

  function label(root) {
    for (const control of root.querySelectorAll("input, select, textarea")) {
      const named = control.getAttribute("aria-label") || control.getAttribute("aria-labelledby")
        || (control.labels && control.labels.length);
      if (!named) control.setAttribute("aria-label", nameOf(control));
    }
  }

  const root = document.getElementById("swagger-ui");
  if (!root) return;
  new MutationObserver(() => label(root)).observe(root, { childList: true, subtree: true });
})();
