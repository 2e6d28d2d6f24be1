// Menus are <details class="cp-menu"> elements: they open and close without script.
// With it, they behave like the menus people know: Escape closes the open one and puts
// the focus back on its button, a click elsewhere closes it, and opening one closes
// the others.
(() => {
  "use strict";
  const openMenus = () => document.querySelectorAll("details.cp-menu[open]");

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const menu of openMenus()) {
      menu.open = false;
      if (menu.contains(document.activeElement)) menu.querySelector("summary").focus();
    }
  });

  document.addEventListener("click", (event) => {
    for (const menu of openMenus()) {
      if (!menu.contains(event.target)) menu.open = false;
    }
  });

  document.addEventListener("toggle", (event) => {
    const opened = event.target;
    if (!opened.matches?.("details.cp-menu") || !opened.open) return;
    for (const menu of openMenus()) {
      if (menu !== opened) menu.open = false;
    }
  }, true);
})();
