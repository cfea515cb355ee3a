// The page shell.
"use strict";

// A custom window keeps the rest of the view (filter, selection): the form
// alone would send only its own fields.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.classList.contains("custom-window")) return;
  event.preventDefault();
  const params = new URLSearchParams(window.location.search);
  for (const name of ["range", "next", "start", "end"]) params.delete(name);
  for (const [name, value] of new FormData(form)) params.set(name, String(value));
  window.location.search = params.toString();
});
