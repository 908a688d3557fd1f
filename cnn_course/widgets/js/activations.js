// Activation explorer. Every f(x) and f'(x) was computed in Python with torch.nn.functional
// and autograd, for each function, slope and range the controls allow; this code only looks
// the values up and draws them.
const W = 260, H = 170, PAD = { left: 44, right: 8, top: 18, bottom: 22 };

function node(tag, attrs, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) element.setAttribute(k, v);
  if (text !== undefined) element.textContent = text;
  return element;
}

function fmt(v) {
  return (Object.is(v, -0) ? 0 : v).toFixed(4);
}

function plot(title, xs, ys, at, cls) {
  const svg = node("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: cls,
    role: "img", "aria-label": t("plot of {title}; the values are in the text above", { title }) });
  let low = Math.min(...ys), high = Math.max(...ys);
  if (high - low < 1e-6) { low -= 0.5; high += 0.5; }
  const margin = 0.08 * (high - low);
  low -= margin; high += margin;
  const x0 = xs[0], x1 = xs[xs.length - 1];
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => PAD.top + ((high - y) / (high - low)) * (H - PAD.top - PAD.bottom);
  svg.append(node("rect", { x: PAD.left, y: PAD.top, width: W - PAD.left - PAD.right,
    height: H - PAD.top - PAD.bottom, class: "frame" }));
  if (low < 0 && high > 0) {
    svg.append(node("line", { x1: sx(x0), x2: sx(x1), y1: sy(0), y2: sy(0), class: "axis" }));
  }
  svg.append(node("line", { x1: sx(0), x2: sx(0), y1: PAD.top, y2: H - PAD.bottom,
    class: "axis" }));
  svg.append(node("line", { x1: sx(xs[at]), x2: sx(xs[at]), y1: PAD.top, y2: H - PAD.bottom,
    class: "probe" }));
  const points = xs.map((x, i) => `${sx(x).toFixed(1)},${sy(ys[i]).toFixed(1)}`).join(" ");
  svg.append(node("polyline", { points, class: "curve" }));
  svg.append(node("circle", { cx: sx(xs[at]), cy: sy(ys[at]), r: 3.5, class: "dot" }));
  svg.append(node("text", { x: PAD.left, y: 12, class: "title" }, title));
  const top = high - margin, bottom = low + margin;
  svg.append(node("text", { x: PAD.left - 4, y: sy(top) + 4, "text-anchor": "end" },
    Number(top.toFixed(2)).toString()));
  if (top !== bottom) {
    svg.append(node("text", { x: PAD.left - 4, y: sy(bottom) + 4, "text-anchor": "end" },
      Number(bottom.toFixed(2)).toString()));
  }
  svg.append(node("text", { x: sx(x0), y: H - 6, "text-anchor": "start" }, x0));
  svg.append(node("text", { x: sx(x1), y: H - 6, "text-anchor": "end" }, x1));
  return svg;
}

function render({ model, el }) {
  useLanguage(model, el);
  const values = { ...model.get("values") };
  const names = model.get("names"), ranges = model.get("ranges"), slopes = model.get("slopes");
  const formulas = { ...model.get("formulas"), ...(model.get("translated_formulas")[LANGUAGE] || {}) };
  const tables = model.get("tables"), notes = model.get("notes")[LANGUAGE] || {};
  const points = tables.x[0].length;
  const root = document.createElement("div");
  root.className = "cnn-explorer activation-explorer";
  const controls = document.createElement("div");
  controls.className = "controls";
  const readout = document.createElement("div");
  readout.className = "readout";
  const pictures = document.createElement("div");
  pictures.className = "plots";

  const label = (text) => Object.assign(document.createElement("label"), { textContent: text });
  const fn = document.createElement("select");
  fn.dataset.control = "function";
  for (const name of names) fn.add(new Option(name, name));
  fn.value = values.function;
  const slider = (name, count, index) => {
    const input = Object.assign(document.createElement("input"),
      { type: "range", min: 0, max: count - 1, step: 1, value: Math.max(0, index) });
    input.dataset.control = name;
    return input;
  };
  const range = slider("range", ranges.length, ranges.indexOf(values.range));
  const slope = slider("slope", slopes.length, slopes.indexOf(values.slope));
  const point = slider("point", points, values.point);
  const shown = { range: document.createElement("output"), slope: document.createElement("output"),
    point: document.createElement("output") };
  controls.append(tie(label(t("function")), fn, "act"), fn, document.createElement("span"),
    tie(label(t("input range")), range, "act"), range, shown.range,
    tie(label(t("Leaky ReLU slope α")), slope, "act"), slope, shown.slope,
    tie(label(t("point x")), point, "act"), point, shown.point);

  function draw() {
    const name = fn.value;
    const leaky = name === "Leaky ReLU";
    const i = Number(range.value), j = leaky ? Number(slope.value) : 0, at = Number(point.value);
    Object.assign(values, { function: name, range: ranges[i], slope: slopes[Number(slope.value)],
      point: at });
    slope.disabled = !leaky;
    const xs = tables.x[i];
    const key = `${name},${j},${i}`, curve = tables.curves[key];
    shown.range.textContent = `±${ranges[i]}`;
    shown.slope.textContent = slopes[Number(slope.value)];
    shown.point.textContent = xs[at];
    const [f, df] = formulas[name];
    const alpha = leaky ? ` (α = ${values.slope})` : "";
    const fmin = Math.min(...curve.f), fmax = Math.max(...curve.f);
    readout.innerHTML =
      `<div>${t("{name}{alpha}: f(x) = {f}; f'(x) = {df}", { name: `<b>${name}</b>`, alpha, f, df })}</div>` +
      `<div>${t("at x = {x}: f(x) = {f}, f'(x) = {df}", {
        x: `<span data-result="x">${xs[at]}</span>`, f: `<b data-result="f">${fmt(curve.f[at])}</b>`,
        df: `<b data-result="df">${fmt(curve.df[at])}</b>` })}</div>` +
      `<div>${t("on [{low}, {high}]: f from {fmin} to {fmax}; flat (|f'| &lt; {limit}): {flat} of the points", {
        low: xs[0], high: xs[xs.length - 1], fmin: `<span data-result="fmin">${fmt(fmin)}</span>`,
        fmax: `<span data-result="fmax">${fmt(fmax)}</span>`, limit: model.get("flat_below"),
        flat: `<span data-result="flat">${curve.flat}</span>` })}</div>` +
      `<div class="note" data-result="note"></div>`;
    readout.querySelector(".note").textContent = notes[key] || curve.note;
    const title = leaky ? `${name}, α = ${values.slope}` : name;
    pictures.replaceChildren(plot(`f(x): ${title}`, xs, curve.f, at, "function"),
      plot(t("f'(x), by autograd"), xs, curve.df, at, "derivative"));
    model.set("values", { ...values });
    model.save_changes();
  }

  fn.addEventListener("change", draw);
  for (const input of [range, slope, point]) input.addEventListener("input", draw);
  draw();
  root.append(controls, readout, pictures);
  el.appendChild(root);
}

export default { render };
