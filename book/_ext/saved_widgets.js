// Draws the notebook widgets saved in a page, with no kernel and no widget-manager library.
//
// myst-nb writes the widgets' saved state into one <script type="...widget-state+json"> and marks
// where each widget was shown with a <script type="...widget-view+json">. The static site has no
// Python kernel, so only two kinds of widget can do anything here:
//   * anywidgets (the course's explorers): their front-end module travels in the saved state and
//     runs as in Jupyter, against a small stand-in for the model (get, set, save_changes, on);
//   * everything else (ipywidgets controls whose callbacks are Python): drawn as they were saved,
//     with disabled controls and a note that moving them needs the notebook.
// When every widget is drawn, <html> gets data-widgets-rendered="true" (the tests wait for it).
(function () {
  "use strict";

  const STATE = 'script[type="application/vnd.jupyter.widget-state+json"]';
  const VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]';
  const REFERENCE = "IPY_MODEL_";
  const STYLE = `
    .saved-widget { max-width: 100%; overflow-x: auto; margin: 0.5em 0; }
    .saved-widget-box { display: flex; gap: 8px 16px; align-items: flex-start; }
    .saved-widget-box.horizontal { flex-wrap: wrap; }
    .saved-widget-box.vertical { flex-direction: column; }
    .saved-widget-control { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px; }
    .saved-widget-control > label, .saved-widget-control > span { min-width: 8em; }
    .saved-widget-control output { font-variant-numeric: tabular-nums; }
    .saved-widget-output img { max-width: 100%; height: auto; }
    .saved-widget-output pre { white-space: pre-wrap; }
    .saved-widget-note { font-size: 0.9em; color: #555; font-style: italic; }
    .saved-widget-toggles button[aria-pressed="true"] { font-weight: bold; }
  `;
  let controlCount = 0;

  function element(tag, props = {}, ...children) {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  // A visible label tied to its control, so that screen readers announce the control's name.
  function labelled(text, control) {
    control.id = `saved-widget-${++controlCount}`;
    if (!text) {
      control.setAttribute("aria-label", "control without a description");
      return [control];
    }
    return [element("label", { htmlFor: control.id, textContent: text }), control];
  }

  // ---- anywidgets: run their own front-end module --------------------------------------------

  const modules = new Map();
  const styles = new Set();

  function importModule(source) {
    if (!modules.has(source)) {
      const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      modules.set(source, import(url));
    }
    return modules.get(source);
  }

  function standInModel(state) {
    const values = { ...state };
    const listeners = new Map();
    const fire = (event) => (listeners.get(event) || []).forEach((callback) => callback());
    return {
      get: (name) => values[name],
      set(name, value) { values[name] = value; fire(`change:${name}`); fire("change"); },
      save_changes() {},
      on(event, callback) { listeners.set(event, [...(listeners.get(event) || []), callback]); },
      off(event, callback) {
        const kept = (listeners.get(event) || []).filter((c) => callback && c !== callback);
        listeners.set(event, kept);
      },
      send() {},
    };
  }

  async function drawAnywidget(state, area) {
    if (state._css && !styles.has(state._css)) {
      styles.add(state._css);
      document.head.append(element("style", { textContent: state._css }));
    }
    const module = await importModule(state._esm);
    let definition = module.default ?? module;
    if (typeof definition === "function") definition = await definition();
    const model = standInModel(state);
    if (definition.initialize) await definition.initialize({ model });
    await definition.render({ model, el: area });
  }

  // ---- other widgets: as saved ---------------------------------------------------------------

  function readout(state) {
    const value = state.value;
    if (Array.isArray(value)) return value.map((v) => readout({ ...state, value: v })).join(" – ");
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return String(value);
    const digits = /\.(\d+)/.exec(state.readout_format || "")?.[1];
    return digits !== undefined ? value.toFixed(Number(digits)) : String(+value.toPrecision(4));
  }

  const DRAW = {
    slider(state) {
      const log = state._model_name === "FloatLogSliderModel";
      const toPosition = (v) => (log ? Math.log(v) / Math.log(state.base || 10) : v);
      const ends = Array.isArray(state.value) ? state.value : [state.value];
      const row = element("div", { className: "saved-widget-control" });
      ends.forEach((end, i) => {
        const input = element("input", { type: "range", disabled: true, min: state.min,
          max: state.max, step: state.step || "any", value: toPosition(end) });
        const which = ends.length === 2 ? (i === 0 ? " (lower end)" : " (upper end)") : "";
        row.append(...labelled(i === 0 ? state.description : "", input));
        if (which) input.setAttribute("aria-label", `${state.description}${which}`);
      });
      row.append(element("output", { textContent: readout(state) }));
      return row;
    },
    choice(state) {
      const select = element("select", { disabled: true,
        multiple: state._model_name === "SelectMultipleModel" });
      const chosen = [].concat(state.index ?? []);
      (state._options_labels || []).forEach((text, i) => {
        select.append(element("option", { textContent: text, selected: chosen.includes(i) }));
      });
      return element("div", { className: "saved-widget-control" },
        ...labelled(state.description, select));
    },
    toggles(state) {
      const group = element("div", { className: "saved-widget-toggles", role: "group" });
      group.setAttribute("aria-label", state.description || "options");
      (state._options_labels || []).forEach((text, i) => {
        const button = element("button", { type: "button", disabled: true, textContent: text });
        button.setAttribute("aria-pressed", String(i === state.index));
        group.append(button);
      });
      return element("div", { className: "saved-widget-control" },
        state.description ? element("span", { textContent: state.description }) : null, group);
    },
    checkbox(state) {
      const box = element("input", { type: "checkbox", disabled: true, checked: !!state.value });
      return element("div", { className: "saved-widget-control" },
        ...labelled(state.description, box));
    },
    text(state) {
      const input = element("input", { type: "text", disabled: true, value: state.value ?? "" });
      return element("div", { className: "saved-widget-control" },
        ...labelled(state.description, input));
    },
    progress(state) {
      const bar = element("progress", { value: state.value - state.min,
        max: state.max - state.min });
      return element("div", { className: "saved-widget-control" },
        ...labelled(state.description, bar));
    },
    button(state) {
      return element("button", { type: "button", disabled: true,
        textContent: state.description || "button" });
    },
    html(state) {
      const body = element("div", { className: "saved-widget-html" });
      body.innerHTML = state.value || "";  // written by the course's own notebook code
      return state.description
        ? element("div", { className: "saved-widget-control" },
          element("span", { textContent: state.description }), body)
        : body;
    },
    label(state) {
      return element("span", { textContent: state.value || "" });
    },
    output(state) {
      const box = element("div", { className: "saved-widget-output" });
      for (const output of state.outputs || []) {
        if (output.output_type === "stream") {
          box.append(element("pre", { textContent: output.text }));
          continue;
        }
        const data = output.data || {};
        if (data["image/png"]) {
          box.append(element("img", { src: `data:image/png;base64,${data["image/png"]}` }));
        } else if (data["image/svg+xml"] || data["text/html"]) {
          const html = element("div");
          html.innerHTML = data["image/svg+xml"] || data["text/html"];
          box.append(html);
        } else if (data["text/plain"]) {
          box.append(element("pre", { textContent: data["text/plain"] }));
        }
      }
      return box;
    },
  };

  const KIND = {
    IntSliderModel: "slider", FloatSliderModel: "slider", FloatLogSliderModel: "slider",
    IntRangeSliderModel: "slider", FloatRangeSliderModel: "slider",
    DropdownModel: "choice", SelectModel: "choice", SelectMultipleModel: "choice",
    RadioButtonsModel: "choice", ToggleButtonsModel: "toggles", CheckboxModel: "checkbox",
    ToggleButtonModel: "checkbox", TextModel: "text", TextareaModel: "text",
    IntTextModel: "text", FloatTextModel: "text", BoundedIntTextModel: "text",
    BoundedFloatTextModel: "text", FloatProgressModel: "progress", IntProgressModel: "progress",
    ButtonModel: "button", HTMLModel: "html", HTMLMathModel: "html", LabelModel: "label",
    OutputModel: "output",
  };
  const BOXES = new Set(["BoxModel", "HBoxModel", "VBoxModel", "GridBoxModel"]);

  function drawSaved(models, id) {
    const saved = models[id];
    if (!saved) return element("span", { textContent: "(a widget whose state was not saved)" });
    const state = saved.state;
    const name = saved.model_name;
    if (BOXES.has(name)) {
      const box = element("div", {
        className: `saved-widget-box ${name === "HBoxModel" ? "horizontal" : "vertical"}`,
      });
      for (const child of state.children || []) {
        box.append(drawSaved(models, String(child).replace(REFERENCE, "")));
      }
      return box;
    }
    const draw = DRAW[KIND[name]];
    return draw ? draw(state) : element("span", { textContent: `(${name.replace(/Model$/, "")})` });
  }

  // Each figure in a saved explorer is described by the settings of the controls around it.
  function describeFigures(tree) {
    const settings = [...tree.querySelectorAll(".saved-widget-control")].map((row) => {
      const name = row.querySelector("label, span")?.textContent.trim().replace(/:$/, "");
      const control = row.querySelector("output, select, input[type=checkbox], input[type=text]");
      if (!name || !control) return null;
      let value = control.value ?? control.textContent;
      if (control.tagName === "SELECT") {
        value = [...control.selectedOptions].map((o) => o.text).join(" and ");
      } else if (control.type === "checkbox") value = control.checked ? "on" : "off";
      else if (control.tagName === "OUTPUT") value = control.textContent;
      return `${name} = ${value}`;
    }).filter(Boolean);
    for (const img of tree.querySelectorAll("img:not([alt])")) {
      img.alt = settings.length
        ? `Figure drawn by the explorer for its saved settings: ${settings.join(", ")}.`
        : "Figure drawn by the explorer for its saved settings.";
    }
  }

  // ---- the page ------------------------------------------------------------------------------

  async function drawView(models, view) {
    const area = element("div", { className: "saved-widget" });
    view.after(area);
    const { model_id: id } = JSON.parse(view.textContent);
    const saved = models[id];
    try {
      if (saved && saved.model_name === "AnyModel") {
        await drawAnywidget(saved.state, area);
        return;
      }
      const tree = drawSaved(models, id);
      if (tree.querySelector("input, select, button")) {
        area.append(element("p", { className: "saved-widget-note", textContent:
          "Saved view: these controls run Python, so they move only in the running notebook "
          + "(use the launch button at the top of the page)." }));
      }
      area.append(tree);
      describeFigures(area);
    } catch (problem) {
      area.append(element("p", { className: "saved-widget-note",
        textContent: "This widget could not be drawn here; it works in the notebook." }));
      console.error("saved widget", id, problem);
    }
  }

  async function drawAll() {
    const stateScript = document.querySelector(STATE);
    const views = [...document.querySelectorAll(VIEW)];
    if (stateScript && views.length) {
      document.head.append(element("style", { textContent: STYLE }));
      const models = JSON.parse(stateScript.textContent).state;
      await Promise.all(views.map((view) => drawView(models, view)));
      if (window.MathJax?.typesetPromise) {
        window.MathJax.typesetPromise([...document.querySelectorAll(".saved-widget")])
          .catch(() => {});
      }
    }
    document.documentElement.dataset.widgetsRendered = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
