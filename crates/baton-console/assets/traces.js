// The traces view: a rejected filter gets the cursor at the error, and "/"
// goes to the filter box from anywhere on the page.
"use strict";
(() => {
  const root = document.getElementById("traces");
  if (!root) {
    return;
  }
  const box = root.querySelector("#filter");

  // The server gives the position in UTF-16 units, as inputs count.
  const at = box.dataset.errorAt;
  if (at !== undefined) {
    box.focus();
    box.setSelectionRange(Number(at), Number(at));
  }

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest?.("input, textarea, select, [contenteditable]");
    if (event.key !== "/" || typing || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    event.preventDefault();
    box.focus();
    box.select();
  });
})();
