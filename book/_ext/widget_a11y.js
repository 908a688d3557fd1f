// Gives the saved ipywidgets on a page accessible names, once the widget manager has drawn them.
// The manager shows a widget's `description` in a `.widget-label` that is not tied to the control
// (a noUiSlider handle with role="slider", a <select>), and draws an Output widget's figures as
// <img> without alternative text. This script names each control after its description and
// describes each such figure by the settings of the controls next to it.
(function () {
  "use strict";

  function describe(widget) {
    const label = widget.querySelector(":scope > .widget-label");
    const text = label ? label.textContent.trim() : "";
    return text || (widget.getAttribute("title") || "").trim();
  }

  function nameControls(root) {
    for (const widget of root.querySelectorAll(".widget-inline-hbox")) {
      const name = describe(widget);
      if (!name) continue;
      const handles = widget.querySelectorAll(".noUi-handle");
      handles.forEach((handle, i) => {
        if (handle.hasAttribute("aria-label")) return;
        const which = handles.length === 2 ? (i === 0 ? " (lower end)" : " (upper end)") : "";
        handle.setAttribute("aria-label", name + which);
      });
      for (const control of widget.querySelectorAll("select, input, textarea, button")) {
        if (control.hasAttribute("aria-label") || control.labels?.length) continue;
        control.setAttribute("aria-label", name);
      }
    }
  }

  function settingsNear(img) {
    // The nearest enclosing box that also holds named controls: the widget the figure belongs to.
    for (let box = img.closest(".widget-box"); box; box = box.parentElement?.closest(".widget-box")) {
      const parts = [];
      for (const widget of box.querySelectorAll(".widget-inline-hbox")) {
        const name = describe(widget);
        const value = widget.querySelector(".widget-readout, select");
        if (name && value) {
          const shown = value.tagName === "SELECT"
            ? [...value.selectedOptions].map((o) => o.text).join(" and ") : value.textContent;
          parts.push(`${name.replace(/:$/, "")} = ${shown.trim()}`);
        }
      }
      if (parts.length) return parts.join(", ");
    }
    return "";
  }

  function describeFigures(root) {
    for (const img of root.querySelectorAll(".widget-output img:not([alt])")) {
      const settings = settingsNear(img);
      img.setAttribute("alt", settings
        ? `Figure drawn by the interactive widget for its saved settings: ${settings}.`
        : "Figure drawn by the interactive widget for its saved settings.");
    }
  }

  function update() {
    nameControls(document);
    describeFigures(document);
  }

  let pending = false;
  const observer = new MutationObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; update(); });
  });

  function start() {
    update();
    observer.observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
