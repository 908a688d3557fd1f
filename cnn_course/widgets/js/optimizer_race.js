// Optimizer race. Every trajectory was computed in Python with torch.optim for each setting
// the controls allow; this code only picks the right ones and draws them.
const COLORS = { SGD: "#7f7f7f", momentum: "#1f77b4", Nesterov: "#17becf", Adagrad: "#2ca02c",
  RMSprop: "#ff7f0e", Adam: "#d62728" };
const W = 420, H = 320;
const SURFACE_NAMES = { ravine: N_("ravine"), saddle: N_("saddle"), rosenbrock: N_("rosenbrock") };

function el(tag, attrs, ns = SVG) {
  const node = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function render({ model, el: host }) {
  useLanguage(model, host);
  const values = { ...model.get("values") };
  const lrs = model.get("learning_rates"), momenta = model.get("momenta");
  const root = document.createElement("div");
  root.className = "cnn-explorer optimizer-race";
  const controls = document.createElement("div");
  controls.className = "controls";
  const readout = document.createElement("div");
  readout.className = "readout";
  const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, style: "overflow: hidden",
  role: "img", "aria-label": t("Paths of the optimizers on the loss surface; each one's end point is listed next to it") });

  const surface = document.createElement("select");
  surface.dataset.control = "surface";
  for (const s of model.get("surfaces")) surface.add(new Option(t(SURFACE_NAMES[s] || s), s));
  surface.value = values.surface;
  const lr = Object.assign(document.createElement("input"),
    { type: "range", min: 0, max: lrs.length - 1, step: 1, value: lrs.indexOf(values.lr) });
  lr.dataset.control = "lr";
  const mom = Object.assign(document.createElement("input"),
    { type: "range", min: 0, max: momenta.length - 1, step: 1,
      value: momenta.indexOf(values.momentum) });
  mom.dataset.control = "momentum";
  const shownLr = document.createElement("output"), shownMom = document.createElement("output");
  const label = (text) => Object.assign(document.createElement("label"), { textContent: text });
  controls.append(tie(label(t("surface")), surface, "race"), surface, document.createElement("span"),
    tie(label(t("learning rate")), lr, "race"), lr, shownLr,
    tie(label(t("momentum")), mom, "race"), mom, shownMom);

  function draw() {
    values.surface = surface.value;
    values.lr = lrs[Number(lr.value)];
    values.momentum = momenta[Number(mom.value)];
    shownLr.textContent = values.lr;
    shownMom.textContent = values.momentum;
    const grid = model.get("tables").grids[values.surface];
    const [x0, x1] = grid.x, [y0, y1] = grid.y;
    const rows = grid.values.length, cols = grid.values[0].length;
    const max = Math.max(...grid.values.flat());
    const sx = (x) => ((x - x0) / (x1 - x0)) * W, sy = (y) => ((y1 - y) / (y1 - y0)) * H;
    svg.replaceChildren();
    grid.values.forEach((row, i) => row.forEach((v, j) => {
      const level = v / max, shade = Math.round(255 - 120 * level);
      svg.appendChild(el("rect", { x: (j * W) / cols, y: (i * H) / rows, width: W / cols + 0.5,
        height: H / rows + 0.5, fill: `rgb(${shade},${shade},255)` }));
    }));
    const lines = [];
    for (const name of Object.keys(COLORS)) {
      const m = ["momentum", "Nesterov"].includes(name) ? Number(mom.value) : 0;
      const entry = model.get("tables").paths[`${values.surface},${lr.value},${m},${name}`];
      const points = entry.path.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
      svg.appendChild(el("polyline", { points: points.join(" "), fill: "none",
        stroke: COLORS[name], "stroke-width": 2 }));
      const [lx, ly] = entry.path[entry.path.length - 1];
      const status = entry.diverged ? t("diverged at step {step}", { step: entry.diverged })
        : t("ends at ({x}, {y})", { x: lx.toFixed(2), y: ly.toFixed(2) });
      lines.push(`<div data-optimizer="${name}"><span style="color:${COLORS[name]}">■</span> ` +
        `${t("{optimizer}: {status}", { optimizer: name === "momentum" ? t("momentum") : name,
          status: `<span data-result="status">${status}</span>` })}</div>`);
    }
    readout.innerHTML = lines.join("");
    model.set("values", { ...values });
    model.save_changes();
  }

  surface.addEventListener("change", draw);
  lr.addEventListener("input", draw);
  mom.addEventListener("input", draw);
  draw();
  root.append(controls, svg, readout);
  host.appendChild(root);
}

export default { render };
