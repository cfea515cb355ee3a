// The map view: choosing a node or an edge shows its panel without a
// reload, and keeps the URL (and the time picker's links) naming the
// selection, so that a reload or a shared link shows the same.
"use strict";
(() => {
  const map = document.getElementById("map");
  if (!map) {
    return;
  }

  const withSelection = (href, key) => {
    const url = new URL(href, location.href);
    if (key) {
      url.searchParams.set("select", key);
    } else {
      url.searchParams.delete("select");
    }
    return url;
  };

  // Shows the panel of `key` (the hint when there is none) and marks its
  // node or edge.
  const show = (key) => {
    let found = false;
    for (const panel of map.querySelectorAll(".map-panel")) {
      panel.hidden = panel.dataset.key !== key;
      found ||= !panel.hidden;
    }
    if (!found) {
      map.querySelector(".map-hint").hidden = false;
    }
    for (const element of map.querySelectorAll("svg [data-select]")) {
      if (element.dataset.select === key) {
        element.setAttribute("aria-current", "true");
      } else {
        element.removeAttribute("aria-current");
      }
    }
    for (const link of document.querySelectorAll("nav.window a")) {
      link.setAttribute("href", withSelection(link.getAttribute("href"), key).search);
    }
  };

  const select = (key) => {
    show(key);
    history.pushState(null, "", withSelection(location.href, key));
  };

  // A large map scrolls: start where the selection is, else at the client.
  const canvas = map.querySelector(".map-canvas");
  const start = map.querySelector("svg [aria-current]") ?? map.querySelector("svg .node.client");
  if (canvas && start) {
    const box = start.getBBox();
    canvas.scrollTo(box.x + box.width / 2 - canvas.clientWidth / 2, box.y + box.height / 2 - canvas.clientHeight / 2);
  }

  map.addEventListener("click", (event) => {
    const link = event.target.closest("[data-select]");
    // Modified clicks keep their meaning: a new tab or window.
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    select(link.dataset.select);
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && new URLSearchParams(location.search).has("select")) {
      select("");
    }
  });

  window.addEventListener("popstate", () => {
    show(new URLSearchParams(location.search).get("select") ?? "");
  });
})();
