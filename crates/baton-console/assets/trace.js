// The trace view. The timeline is a tree of flat rows (aria-level gives the
// nesting) and every row's details are already in the page, hidden: this
// script only shows, hides and moves focus. Listeners sit on the tree, not on
// rows, and nothing runs per row at load, so a trace of thousands of rows
// costs nothing until it is used.
"use strict";

(() => {
  const tree = document.getElementById("timeline");
  if (!tree) {
    return;
  }
  const emptyPanel = document.getElementById("panel-empty");
  let selected = null;
  let current = tree.querySelector('[tabindex="0"]');

  const level = (row) => Number(row.getAttribute("aria-level"));
  const isCollapsed = (row) => row.getAttribute("aria-expanded") === "false";
  const isExpanded = (row) => row.getAttribute("aria-expanded") === "true";
  const panelOf = (row) => document.getElementById(row.getAttribute("aria-controls"));

  function rowOf(element) {
    const row = element.closest('[role="treeitem"]');
    return row && row.parentElement === tree ? row : null;
  }

  // Rows are flat, so a row's descendants are the rows after it that are
  // deeper than it.
  function setExpanded(row, expanded) {
    if (!row.hasAttribute("aria-expanded")) {
      return;
    }
    row.setAttribute("aria-expanded", String(expanded));
    const depth = level(row);
    // Below a collapsed descendant, rows stay hidden when this one opens.
    let hiddenBelow = Infinity;
    for (let next = row.nextElementSibling; next && level(next) > depth; next = next.nextElementSibling) {
      const nextLevel = level(next);
      if (!expanded || nextLevel > hiddenBelow) {
        next.hidden = true;
        continue;
      }
      next.hidden = false;
      hiddenBelow = isCollapsed(next) ? nextLevel : Infinity;
    }
  }

  function parentOf(row) {
    const depth = level(row);
    let previous = row.previousElementSibling;
    while (previous && level(previous) >= depth) {
      previous = previous.previousElementSibling;
    }
    return previous;
  }

  function visibleNeighbour(row, forward) {
    const step = (from) => (forward ? from.nextElementSibling : from.previousElementSibling);
    let next = step(row);
    while (next && next.hidden) {
      next = step(next);
    }
    return next;
  }

  // One row at a time is in the tab order: the tree is one stop, arrows move.
  function makeCurrent(row) {
    if (current && current !== row) {
      current.tabIndex = -1;
    }
    current = row;
    row.tabIndex = 0;
  }

  function focusRow(row) {
    makeCurrent(row);
    row.focus();
  }

  // `byUser`: a click or a key, rather than the address.
  function select(row, byUser) {
    const panel = panelOf(row);
    if (selected !== row) {
      if (selected) {
        selected.setAttribute("aria-selected", "false");
        panelOf(selected).hidden = true;
      }
      selected = row;
      row.setAttribute("aria-selected", "true");
      panel.hidden = false;
      emptyPanel.hidden = true;
    }
    if (!byUser) {
      return;
    }
    // Replaced rather than pushed: walking the tree should not fill the
    // history, and a replaced fragment neither scrolls nor fires hashchange.
    history.replaceState(null, "", "#" + row.id);
    // On a narrow screen the panel sits below the timeline, out of sight.
    if (panel.getBoundingClientRect().top >= window.innerHeight) {
      panel.scrollIntoView({ block: "start" });
    }
  }

  // A link (or the address bar) names a row: open its ancestors, select it.
  function selectFromHash() {
    const target = location.hash.startsWith("#seg-") ? document.getElementById(location.hash.slice(1)) : null;
    const row = target && rowOf(target);
    if (!row) {
      return;
    }
    for (let parent = parentOf(row); parent; parent = parentOf(parent)) {
      if (isCollapsed(parent)) {
        setExpanded(parent, true);
      }
    }
    select(row, false);
    makeCurrent(row);
    row.scrollIntoView({ block: "nearest" });
  }

  tree.addEventListener("click", (event) => {
    const row = rowOf(event.target);
    if (!row) {
      return;
    }
    // Focus first: selecting may scroll to the panel, focusing must not undo that.
    focusRow(row);
    if (event.target.closest(".toggle")) {
      setExpanded(row, isCollapsed(row));
    } else {
      select(row, true);
    }
  });

  tree.addEventListener("keydown", (event) => {
    const row = rowOf(event.target);
    if (!row || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    let target = null;
    switch (event.key) {
      case "ArrowDown":
        target = visibleNeighbour(row, true);
        break;
      case "ArrowUp":
        target = visibleNeighbour(row, false);
        break;
      case "ArrowRight":
        if (isCollapsed(row)) {
          setExpanded(row, true);
        } else if (isExpanded(row)) {
          target = row.nextElementSibling;
        }
        break;
      case "ArrowLeft":
        if (isExpanded(row)) {
          setExpanded(row, false);
        } else {
          target = parentOf(row);
        }
        break;
      case "Home":
        target = tree.firstElementChild;
        break;
      case "End":
        target = tree.lastElementChild.hidden ? visibleNeighbour(tree.lastElementChild, false) : tree.lastElementChild;
        break;
      case "Enter":
        select(row, true);
        break;
      case " ":
        setExpanded(row, isCollapsed(row));
        break;
      default:
        return;
    }
    event.preventDefault();
    if (target) {
      focusRow(target);
    }
  });

  window.addEventListener("hashchange", selectFromHash);
  selectFromHash();
})();
