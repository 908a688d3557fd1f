// Convolution arithmetic explorer. All numbers come from tables computed in Python
// (cnn_course.arith); this code only reads the controls, looks values up and draws.
const LABELS = {
  n: N_("input size n"), kernel_size: N_("kernel k"), padding: N_("padding p"),
  stride: N_("stride s"), dilation: N_("dilation d"), in_channels: "in_channels",
  out_channels: "out_channels", out_row: N_("output row"), out_col: N_("output column"),
};

function slider(name, low, high, value, onInput) {
  const label = document.createElement("label");
  label.textContent = t(LABELS[name]);
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: low, max: high, step: 1, value });
  input.dataset.control = name;
  tie(label, input, "conv");
  const shown = document.createElement("output");
  shown.textContent = value;
  input.addEventListener("input", () => { shown.textContent = input.value; onInput(); });
  return { label, input, shown };
}

function rect(svg, x, y, w, h, cls) {
  const r = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ x, y, width: w, height: h, class: cls })) {
    r.setAttribute(k, v);
  }
  svg.appendChild(r);
}

function render({ model, el }) {
  useLanguage(model, el);
  const ranges = model.get("ranges");
  const values = { ...model.get("values") };
  const root = document.createElement("div");
  root.className = "cnn-explorer conv-arithmetic";
  const controls = document.createElement("div");
  controls.className = "controls";
  const readout = document.createElement("div");
  readout.className = "readout";
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", "260");
  svg.setAttribute("height", "260");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t(
    "The padded input grid: the cells that the chosen output position reads are highlighted; the numbers are in the text next to it."));
  const inputs = {};
  const update = () => {
    for (const [name, s] of Object.entries(inputs)) values[name] = Number(s.input.value);
    draw();
    model.set("values", { ...values });
    model.save_changes();
  };
  const all = { ...ranges, out_row: [0, 0], out_col: [0, 0] };
  // In LABELS' order (n, k, p, s, d, ...): the saved state keeps its keys sorted.
  for (const name of Object.keys(LABELS)) {
    const [low, high] = all[name];
    const s = slider(name, low, high, values[name], update);
    inputs[name] = s;
    controls.append(s.label, s.input, s.shown);
  }

  function draw() {
    const { n, kernel_size: k, padding: p, stride: s, dilation: d } = values;
    const o = model.get("output_sizes")[`${n},${k},${p},${s},${d}`];
    const params = model.get("param_counts")[`${values.in_channels},${values.out_channels},${k}`];
    svg.replaceChildren();
    if (typeof o === "string") {
      readout.innerHTML = "";
      const problem = document.createElement("div");
      problem.className = "problem";
      problem.dataset.result = "problem";
      const key = `${n},${k},${p},${s},${d}`;
      const reason = (model.get("reasons")[LANGUAGE] || {})[key] || o;
      problem.textContent = t("This combination does not work: {reason}", { reason });
      readout.appendChild(problem);
      return;
    }
    for (const name of ["out_row", "out_col"]) {
      inputs[name].input.max = o - 1;
      if (values[name] > o - 1) values[name] = o - 1;
      inputs[name].input.value = values[name];
      inputs[name].shown.textContent = values[name];
    }
    readout.innerHTML =
      `<div>o = ⌊(n + 2p − d(k−1) − 1) / s⌋ + 1 = ⌊(${n} + 2·${p} − ${d}·(${k}−1) − 1) / ${s}⌋ + 1 = ` +
      `<b data-result="size">${o}</b></div>` +
      `<div>${t("output: {c} × {o} × {o} (channels × height × width)",
        { c: values.out_channels, o })}</div>` +
      `<div>${t("parameters")} = k·k·c_in·c_out + c_out = ${k}·${k}·${values.in_channels}·` +
      `${values.out_channels} + ${values.out_channels} = <b data-result="params">` +
      `${params.toLocaleString("en-US")}</b></div>`;
    const size = n + 2 * p;
    svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        const inside = i >= p && i < p + n && j >= p && j < p + n;
        rect(svg, j, i, 1, 1, inside ? "cell" : "cell pad");
      }
    }
    const top = values.out_row * s, left = values.out_col * s;
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) rect(svg, left + b * d, top + a * d, 1, 1, "tap");
    }
    const span = d * (k - 1) + 1;
    rect(svg, left, top, span, span, "window");
  }

  draw();
  root.append(controls, readout, svg);
  el.appendChild(root);
}

export default { render };
