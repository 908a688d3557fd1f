// Pooling explorer. Output sizes and pooled values come from tables computed in Python
// (cnn_course.arith and torch.nn.functional); this code only looks them up and draws.

function heatmap(values, cell, highlight, description) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", description);
  const rows = values.length, cols = values[0].length;
  svg.setAttribute("width", cols * cell);
  svg.setAttribute("height", rows * cell);
  svg.setAttribute("viewBox", `0 0 ${cols} ${rows}`);
  values.forEach((row, i) => row.forEach((v, j) => {
    const r = document.createElementNS(SVG, "rect");
    const shade = Math.round(255 * (1 - Math.max(0, Math.min(1, v))));
    for (const [k, val] of Object.entries({ x: j, y: i, width: 1, height: 1,
      fill: `rgb(${shade},${shade},${shade})`, stroke: "#bbb", "stroke-width": 0.03 })) {
      r.setAttribute(k, val);
    }
    svg.appendChild(r);
  }));
  if (highlight) {
    const r = document.createElementNS(SVG, "rect");
    for (const [k, val] of Object.entries({ ...highlight, class: "window" })) r.setAttribute(k, val);
    svg.appendChild(r);
  }
  return svg;
}

function control(labelText, element) {
  const label = document.createElement("label");
  label.textContent = labelText;
  tie(label, element, "pool");
  const shown = document.createElement("output");
  return [label, element, shown];
}

function render({ model, el }) {
  useLanguage(model, el);
  const values = { ...model.get("values") };
  const fmap = model.get("feature_map");
  const root = document.createElement("div");
  root.className = "cnn-explorer pooling-explorer";
  const controls = document.createElement("div");
  controls.className = "controls";
  const readout = document.createElement("div");
  readout.className = "readout";
  const pictures = document.createElement("div");
  pictures.style.display = "flex";
  pictures.style.gap = "16px";

  const mode = document.createElement("select");
  mode.dataset.control = "mode";
  for (const m of ["max", "avg"]) mode.add(new Option(m === "max" ? t("max pooling") : t("average pooling"), m));
  mode.value = values.mode;
  const sliders = {};
  const parts = [control(t("pooling"), mode)];
  for (const [name, label, high] of [["kernel_size", N_("kernel k"), 4], ["stride", N_("stride s"), 4],
    ["out_row", N_("output row"), 0], ["out_col", N_("output column"), 0]]) {
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: name.startsWith("out") ? 0 : 1, max: high,
      step: 1, value: values[name] });
    input.dataset.control = name;
    sliders[name] = input;
    parts.push(control(t(label), input));
  }
  for (const p of parts) controls.append(...p);

  function draw() {
    values.mode = mode.value;
    for (const [name, input] of Object.entries(sliders)) values[name] = Number(input.value);
    parts.slice(1).forEach(([, input, shown]) => { shown.textContent = input.value; });
    const { kernel_size: k, stride: s } = values;
    const entry = model.get("tables")[`${values.mode},${k},${s}`];
    pictures.replaceChildren();
    if (entry.problem) {
      readout.innerHTML = "";
      const problem = document.createElement("div");
      problem.className = "problem";
      problem.dataset.result = "problem";
      const reason = (model.get("reasons")[LANGUAGE] || {})[`${values.mode},${k},${s}`] || entry.problem;
      problem.textContent = t("This combination does not work: {reason}", { reason });
      readout.appendChild(problem);
      return;
    }
    const [oh, ow] = entry.size;
    sliders.out_row.max = oh - 1;
    sliders.out_col.max = ow - 1;
    values.out_row = Math.min(values.out_row, oh - 1);
    values.out_col = Math.min(values.out_col, ow - 1);
    sliders.out_row.value = values.out_row;
    sliders.out_col.value = values.out_col;
    parts.slice(1).forEach(([, input, shown]) => { shown.textContent = input.value; });
    const n = fmap.length;
    const picked = entry.values[values.out_row][values.out_col];
    const windowed = { row: values.out_row, col: values.out_col,
      value: `<b data-result="value">${picked.toFixed(2)}</b>` };
    readout.innerHTML =
      `<div>${t("{formula} (height and width)", { formula:
        `o = ⌊(n − k) / s⌋ + 1 = ⌊(${n} − ${k}) / ${s}⌋ + 1 = <b data-result="size">${oh}</b>` })}` +
      `</div><div>${t("{before} → {after}: {percent}% fewer values; parameters: {zero}", {
        before: `${n}×${n}`, after: `${oh}×${ow}`,
        percent: Math.round(100 * (1 - (oh * ow) / (n * n))), zero: "<b>0</b>" })}</div>` +
      `<div>${values.mode === "max" ? t("output ({row}, {col}) = max of the red window = {value}", windowed)
        : t("output ({row}, {col}) = avg of the red window = {value}", windowed)}</div>`;
    const win = { x: values.out_col * s, y: values.out_row * s, width: k, height: k };
    const outWin = { x: values.out_col, y: values.out_row, width: 1, height: 1 };
    pictures.append(heatmap(fmap, 18, win, t("feature map, the pooling window outlined")),
      heatmap(entry.values, 18 * Math.max(1, n / oh / 1.5), outWin,
        t("pooled output, the chosen output cell outlined")));
    model.set("values", { ...values });
    model.save_changes();
  }

  mode.addEventListener("change", draw);
  for (const input of Object.values(sliders)) input.addEventListener("input", draw);
  draw();
  root.append(controls, readout, pictures);
  el.appendChild(root);
}

export default { render };
