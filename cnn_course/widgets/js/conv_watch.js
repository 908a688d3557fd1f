// Watch a convolution. Unlike the other explorers, this one computes: conv2d() below runs the
// loops of Chapter 1 on a patch of the photo, and the map fills in one output per step. Python
// (cnn_course.widgets.conv_watch) ships the patch, the named kernels (preset_kernel) and the
// output size, or the reason there is none, for every setting (cnn_course.arith).
const CHANNELS = { 1: ["gray"], 3: ["red", "green", "blue"] };
// The names shown for the channels and for the named kernels (cnn_course.widgets.conv_explorer's
// PRESETS), each shown through t.
const CHANNEL_NAMES = { gray: N_("gray"), red: N_("red"), green: N_("green"), blue: N_("blue") };
const KERNEL_NAMES = { identity: N_("identity"), "vertical edge": N_("vertical edge"),
  "horizontal edge": N_("horizontal edge"), blur: N_("blur"), sharpen: N_("sharpen") };
const kernelName = (name) => (name in KERNEL_NAMES ? t(KERNEL_NAMES[name]) : name);
const channelName = (name) => t(CHANNEL_NAMES[name]);
const FORMULA = "o = ⌊(n + 2p − d(k−1) − 1) / s⌋ + 1";
const TINTS = { gray: [1, 1, 1], red: [1, 0.16, 0.12], green: [0.1, 0.8, 0.2], blue: [0.15, 0.35, 1] };
const SPEEDS = { slow: 1000, normal: 450, fast: 60 }; // milliseconds per output
const INPUT_CELL = 32, OUTPUT_CELL = 40; // pixels per cell before the grids scale down

// ---- the computation ------------------------------------------------------------------------

// x[c][row][col], zero outside the input: this is the padding.
function pixel(plane, row, col) {
  const inside = row >= 0 && row < plane.length && col >= 0 && col < plane[0].length;
  return inside ? plane[row][col] : 0;
}

// out[i][j] = Σ_c Σ_a Σ_b x[c][i·s + a·d − p][j·s + b·d − p] · w[c][a][b] + bias
function conv2d(x, w, bias, o, s, p, d) {
  const k = w[0].length;
  const out = [];
  for (let i = 0; i < o; i++) {
    out.push([]);
    for (let j = 0; j < o; j++) {
      let sum = 0;
      for (let c = 0; c < x.length; c++) {
        for (let a = 0; a < k; a++) {
          for (let b = 0; b < k; b++) {
            sum += pixel(x[c], i * s + a * d - p, j * s + b * d - p) * w[c][a][b];
          }
        }
      }
      out[i].push(sum + bias);
    }
  }
  return out;
}

// ---- formatting -----------------------------------------------------------------------------

const minus = (text) => text.replace("-", "−");
const fixed2 = (v) => minus((Math.abs(v) < 0.005 ? 0 : v).toFixed(2));
function weightText(w) {                      // at most 4 decimals, no trailing zeros
  const rounded = Number(w.toFixed(4));
  return minus(String(rounded === 0 ? 0 : rounded));
}
const factor = (w) => (w < 0 && weightText(w) !== "0" ? `(${weightText(w)})` : weightText(w));

function shade(rgb) {                          // fill and a readable text colour for it
  const [r, g, b] = rgb.map((v) => Math.round(255 * Math.max(0, Math.min(1, v))));
  const light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 140;
  return { fill: `rgb(${r},${g},${b})`, text: light ? "#111" : "#fff" };
}

function diverging(v, limit) {                 // purple (negative), white (0), orange (positive)
  const t = Math.max(-1, Math.min(1, v / limit));
  const end = t < 0 ? [0.37, 0.24, 0.6] : [0.9, 0.5, 0.08];
  return shade(end.map((e) => 1 + (e - 1) * Math.abs(t)));
}

// ---- drawing --------------------------------------------------------------------------------

function svgNode(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function gridSvg(rows, cols, cell, description) {
  const svg = svgNode("svg", { role: "img", "aria-label": description, width: cols * cell,
    height: rows * cell, viewBox: `0 0 ${cols} ${rows}`, class: "grid" });
  return svg;
}

function cellWithText(svg, row, col, colours, text, cls) {
  const rect = svgNode("rect", { x: col, y: row, width: 1, height: 1, fill: colours.fill,
    class: cls }, svg);
  if (text !== "") {
    const label = svgNode("text", { x: col + 0.5, y: row + 0.52, fill: colours.text,
      "text-anchor": "middle", "dominant-baseline": "middle" }, svg);
    label.textContent = text;
  }
  return rect;
}

// ---- controls -------------------------------------------------------------------------------

function labelled(text, control, parts) {
  const label = document.createElement("label");
  label.textContent = text;
  tie(label, control, "watch");
  const shown = document.createElement("output");
  parts.append(label, control, shown);
  return shown;
}

function select(name, options, value) {
  const element = document.createElement("select");
  element.dataset.control = name;
  for (const [optionValue, text] of options) element.add(new Option(text, optionValue));
  element.value = value;
  return element;
}

function numberInput(value, step) {
  const input = document.createElement("input");
  Object.assign(input, { type: "number", step, value });
  return input;
}

function button(text, name) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = text;
  element.dataset.action = name;
  return element;
}

// ---- the explorer ---------------------------------------------------------------------------

function render({ model, el }) {
  useLanguage(model, el);
  const images = model.get("images");
  const presets = model.get("presets");
  const table = model.get("output_sizes");
  const ranges = model.get("ranges");
  const values = { ...model.get("values") };
  const named = Object.keys(presets);
  let lastNamed = named.includes(values.kernel) ? values.kernel : named[0];
  let weights = values.kernel === "custom" && values.weights
    ? values.weights.map((plane) => plane.map((row) => row.map(Number)))
    : presetWeights(values.kernel, values.kernel_size, values.channels);
  let done = 0;        // outputs computed so far, in reading order
  let timer = null;    // the Play interval
  let output = null;   // the whole map, once the setting has one

  function presetWeights(name, k, channels) {
    const kernel = presets[name][String(k)];
    return CHANNELS[channels].map(() => kernel.map((row) => row.map((w) => w / channels)));
  }

  const root = document.createElement("div");
  root.className = "cnn-explorer conv-watch";

  // controls
  const controls = document.createElement("div");
  controls.className = "controls";
  const channelSelect = select("channels",
    [["1", t("gray, 1 channel")], ["3", t("colour, 3 channels")]], String(values.channels));
  labelled(t("input"), channelSelect, controls);
  const kernelSelect = select("kernel",
    [...named.map((name) => [name, kernelName(name)]), ["custom", t("custom (edited)")]],
    values.kernel);
  labelled(t("kernel"), kernelSelect, controls);
  const sliders = {};
  const allRanges = { kernel_size: [1, 5], ...ranges };
  const sliderLabels = { kernel_size: t("kernel size k"), padding: t("padding p"),
    stride: t("stride s"), dilation: t("dilation d") };
  // In the labels' order (k, p, s, d): the saved state keeps its keys sorted.
  for (const name of Object.keys(sliderLabels)) {
    const [low, high] = allRanges[name];
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: low, max: high,
      step: name === "kernel_size" ? 2 : 1, value: values[name] });
    input.dataset.control = name;
    const shown = labelled(sliderLabels[name], input, controls);
    shown.textContent = values[name];
    sliders[name] = { input, shown };
  }
  const biasInput = numberInput(values.bias, "0.1");
  biasInput.dataset.control = "bias";
  labelled(t("bias b"), biasInput, controls);
  const speedSelect = select("speed",
    [["slow", t("slow")], ["normal", t("normal")], ["fast", t("fast")]], values.speed);
  labelled(t("speed"), speedSelect, controls);

  // buttons and readout
  const side = document.createElement("div");
  side.className = "side";
  const actions = document.createElement("div");
  actions.className = "actions";
  const playButton = button(t("Play"), "play"), pauseButton = button(t("Pause"), "pause");
  const stepButton = button(t("Step"), "step"), resetButton = button(t("Reset"), "reset");
  actions.append(playButton, pauseButton, stepButton, resetButton);
  const status = document.createElement("div");
  status.className = "status";
  status.setAttribute("aria-live", "polite");
  const sizeLine = document.createElement("div");
  sizeLine.className = "size";
  side.append(actions, status, sizeLine);

  // pictures
  const planes = document.createElement("div");
  planes.className = "planes";
  const result = document.createElement("div");
  result.className = "result";
  const outputBox = document.createElement("figure");
  const sumBox = document.createElement("div");
  sumBox.className = "sum-box";
  const sumCaption = document.createElement("div");
  sumCaption.className = "sum-caption";
  const sum = document.createElement("div");
  sum.className = "sum";
  sum.dataset.result = "sum";
  sumBox.append(sumCaption, sum);
  result.append(outputBox, sumBox);

  // ---- state and settings ---------------------------------------------------------------------

  function setting() {
    const { kernel_size: k, padding: p, stride: s, dilation: d } = values;
    const key = `${k},${p},${s},${d}`;
    const size = table[key];
    return { k, p, s, d, key, o: typeof size === "number" ? size : null,
      problem: typeof size === "string" ? size : null };
  }

  function save() {
    values.weights = values.kernel === "custom" ? weights : null;
    model.set("values", { ...values });
    model.save_changes();
  }

  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    root.dataset.playing = "false";
  }

  function tick() {
    const { o } = setting();
    if (o === null || done >= o * o) { stop(); return; }
    done += 1;
    draw();
    if (done >= o * o) stop();
  }

  function play() {
    const { o } = setting();
    if (o === null) return;
    if (done >= o * o) done = 0;
    stop();
    root.dataset.playing = "true";
    tick();
    if (root.dataset.playing === "true") timer = setInterval(tick, SPEEDS[values.speed]);
  }

  playButton.addEventListener("click", play);
  pauseButton.addEventListener("click", () => { stop(); draw(); });
  stepButton.addEventListener("click", () => {
    stop();
    const { o } = setting();
    if (o === null) return;
    if (done >= o * o) done = 0;
    done += 1;
    draw();
  });
  resetButton.addEventListener("click", () => { stop(); done = 0; draw(); });

  // ---- kernel editor --------------------------------------------------------------------------

  function buildPlanes() {
    planes.replaceChildren();
    const names = CHANNELS[values.channels];
    names.forEach((channel, c) => {
      const row = document.createElement("div");
      row.className = "plane";
      const picture = document.createElement("figure");
      picture.className = "input";
      const caption = document.createElement("figcaption");
      caption.textContent = values.channels === 1 ? t("input (gray)")
        : t("input, {channel} channel", { channel: channelName(channel) });
      picture.append(caption);
      const times = document.createElement("div");
      times.className = "times";
      times.textContent = "×";
      times.setAttribute("aria-hidden", "true");
      const editor = document.createElement("fieldset");
      editor.className = "kernel";
      const legend = document.createElement("legend");
      legend.textContent = values.channels === 1 ? t("kernel weights")
        : t("kernel, {channel} slice", { channel: channelName(channel) });
      const cells = document.createElement("div");
      cells.className = "weights";
      cells.style.gridTemplateColumns = `repeat(${values.kernel_size}, auto)`;
      weights[c].forEach((kernelRow, a) => kernelRow.forEach((w, b) => {
        const input = numberInput(weightText(w).replace("−", "-"), "any");
        input.dataset.weight = `${c},${a},${b}`;
        const place = { row: a + 1, column: b + 1, channel: channelName(channel) };
        input.setAttribute("aria-label", values.channels === 1
          ? t("weight, row {row}, column {column}", place)
          : t("weight ({channel}), row {row}, column {column}", place));
        const edit = () => {
          const v = input.valueAsNumber;
          input.setAttribute("aria-invalid", String(!Number.isFinite(v)));
          if (!Number.isFinite(v) || v === weights[c][a][b]) return;
          weights[c][a][b] = v;
          values.kernel = "custom";
          kernelSelect.value = "custom";
          save();
          draw();
        };
        input.addEventListener("input", edit);
        input.addEventListener("change", () => {
          edit();
          if (!Number.isFinite(input.valueAsNumber)) {  // give the field its value back
            input.value = weightText(weights[c][a][b]).replace("−", "-");
            input.setAttribute("aria-invalid", "false");
          }
        });
        cells.appendChild(input);
      }));
      editor.append(legend, cells);
      row.append(picture, times, editor);
      planes.appendChild(row);
    });
  }

  // ---- drawing --------------------------------------------------------------------------------

  let drawn = "";  // what the input grids show now: redrawn only when that changes
  function drawInputs(where) {
    const { k, p, s, d } = setting();
    const key = JSON.stringify([values.channels, k, p, s, d, where, planes.childElementCount]);
    if (key === drawn && planes.querySelector("figure.input svg")) return;
    drawn = key;
    const x = images[String(values.channels)];
    const n = x[0].length, size = n + 2 * p;
    const names = CHANNELS[values.channels];
    [...planes.querySelectorAll("figure.input")].forEach((figure, c) => {
      const tint = TINTS[names[c]];
      const place = where ? t("; the kernel's window for output row {i}, column {j} is outlined in red, the pixels it reads in blue", where) : "";
      const about = { channel: channelName(names[c]), n, p, place };
      const svg = gridSvg(size, size, INPUT_CELL, p === 1
        ? t("Input {channel}, {n} × {n} pixels with {p} ring of zero padding{place}. The values are in the sum written below.", about)
        : t("Input {channel}, {n} × {n} pixels with {p} rings of zero padding{place}. The values are in the sum written below.", about));
      for (let row = 0; row < size; row++) {
        for (let col = 0; col < size; col++) {
          const inside = row >= p && row < p + n && col >= p && col < p + n;
          if (inside) {
            const v = x[c][row - p][col - p];
            cellWithText(svg, row, col, shade(tint.map((t) => t * v)), v.toFixed(2), "cell-in");
          } else {
            cellWithText(svg, row, col, { fill: "#eee", text: "#777" }, "0", "cell-pad");
          }
        }
      }
      if (where) {
        const top = where.i * s, left = where.j * s;
        for (let a = 0; a < k; a++) {
          for (let b = 0; b < k; b++) {
            svgNode("rect", { x: left + b * d + 0.07, y: top + a * d + 0.07, width: 0.86,
              height: 0.86, class: "watch-tap" }, svg);
          }
        }
        const span = d * (k - 1) + 1;
        svgNode("rect", { x: left, y: top, width: span, height: span, class: "window" }, svg);
      }
      figure.querySelector("svg")?.remove();
      figure.appendChild(svg);
    });
  }

  function drawOutput(o, where) {
    outputBox.replaceChildren();
    const caption = document.createElement("figcaption");
    caption.textContent = t("output, {o} × {o} (orange above 0, purple below)", { o });
    const limit = Math.max(1e-9, ...output.flat().map(Math.abs));
    const about = { o, done, total: o * o, ...where };
    const svg = gridSvg(o, o, OUTPUT_CELL, where
      ? t("Output map, {o} × {o}: {done} of {total} values computed so far, the latest (row {i}, column {j}) outlined. The latest value and its sum are written out as text.", about)
      : t("Output map, {o} × {o}: {done} of {total} values computed so far. The latest value and its sum are written out as text.", about));
    for (let i = 0; i < o; i++) {
      for (let j = 0; j < o; j++) {
        const filled = i * o + j < done;
        const v = output[i][j];
        const rect = cellWithText(svg, i, j, filled ? diverging(v, limit) : { fill: "#fff" },
          filled ? fixed2(v) : "", filled ? "cell-out" : "cell-out empty");
        rect.dataset.row = i;
        rect.dataset.col = j;
        if (filled) rect.dataset.value = String(v);
      }
    }
    if (where) {
      svgNode("rect", { x: where.j, y: where.i, width: 1, height: 1, class: "window" }, svg);
    }
    outputBox.append(caption, svg);
  }

  function writeSum(where) {
    sum.replaceChildren();
    if (!where) {
      sumCaption.textContent = t("Each output's sum of products is written out here.");
      return;
    }
    sumCaption.textContent = t("output row {i}, column {j} = input · kernel, summed, plus the bias:", where);
    const { k, p, s, d } = setting();
    const x = images[String(values.channels)];
    const names = CHANNELS[values.channels];
    sum.classList.toggle("channels", names.length > 1);
    sumBox.classList.toggle("wide", k === 5);  // long lines: below the map unless there is room
    let first = true;
    names.forEach((channel, c) => {
      for (let a = 0; a < k; a++) {
        const line = document.createElement("div");
        line.className = first ? "line first" : "line";
        const terms = [];
        for (let b = 0; b < k; b++) {
          const row = where.i * s + a * d - p, col = where.j * s + b * d - p;
          const inside = row >= 0 && row < x[c].length && col >= 0 && col < x[c][0].length;
          const v = pixel(x[c], row, col);
          terms.push(`${inside ? v.toFixed(2) : "0"}·${factor(weights[c][a][b])}`);
        }
        const label = names.length > 1 && a === 0
          ? `${t("{channel}:", { channel: channelName(channel) })} ` : "";
        const labelSpan = document.createElement("span");
        labelSpan.className = "channel";
        labelSpan.textContent = label;
        const termSpan = document.createElement("span");
        terms.forEach((term, b) => {
          const part = document.createElement("span");
          part.className = "term";
          part.textContent = `${b === 0 && first ? "" : "+ "}${term}`;
          termSpan.append(part, " ");
        });
        first = false;
        line.append(labelSpan, termSpan);
        sum.appendChild(line);
      }
    });
    const total = output[where.i][where.j];
    const last = document.createElement("div");
    last.className = "line";
    const spacer = document.createElement("span");
    spacer.className = "channel";
    const end = document.createElement("span");
    end.innerHTML = `+ ${t("bias")} ${weightText(values.bias)} = `
      + `<b data-result="value">${fixed2(total)}</b>`;
    last.append(spacer, end);
    sum.appendChild(last);
  }

  function draw() {
    const { k, p, s, d, o, problem } = setting();
    const x = images[String(values.channels)];
    const n = x[0].length;
    for (const [name, { input, shown }] of Object.entries(sliders)) {
      input.value = values[name];
      shown.textContent = values[name];
    }
    root.dataset.weights = JSON.stringify(weights);
    root.dataset.bias = String(values.bias);
    if (problem !== null) {
      stop();
      done = 0;
      output = null;
      root.dataset.outSize = "";
      root.dataset.output = "";
      root.dataset.done = "0";
      root.dataset.current = "";
      status.replaceChildren();
      const message = document.createElement("div");
      message.className = "problem";
      message.dataset.result = "problem";
      const reason = (model.get("reasons")[LANGUAGE] || {})[setting().key] || problem;
      message.textContent = t("This combination does not work: {reason}", { reason });
      status.appendChild(message);
      sizeLine.textContent = t("{formula} has no value here: there is no output to compute.",
        { formula: FORMULA });
      drawInputs(null);
      outputBox.replaceChildren();
      sum.replaceChildren();
      result.hidden = true;
      return;
    }
    result.hidden = false;
    output = conv2d(x, weights, values.bias, o, s, p, d);
    done = Math.min(done, o * o);
    const where = done > 0 ? { i: Math.floor((done - 1) / o), j: (done - 1) % o } : null;
    root.dataset.outSize = String(o);
    root.dataset.output = JSON.stringify(output);
    root.dataset.done = String(done);
    root.dataset.current = where ? `${where.i},${where.j}` : "";
    const formula = `${FORMULA} = ⌊(${n} + 2·${p} − ${d}·(${k}−1) − 1) / ${s}⌋ + 1 = `
      + `<b data-result="size">${o}</b>`;
    sizeLine.innerHTML = t("{formula}, so the map is {o} × {o}.", { formula, o });
    const about = { ...where, value: where ? fixed2(output[where.i][where.j]) : "",
      count: values.channels * k * k, done, total: o * o };
    status.textContent = !where
      ? t("Press Step to compute the first of the {total} outputs, or Play to watch them all.", about)
      : done === o * o
        ? t("Output row {i}, column {j} = {value}, the sum of {count} products and the bias ({done} of {total} computed, the map is complete).", about)
        : t("Output row {i}, column {j} = {value}, the sum of {count} products and the bias ({done} of {total} computed).", about);
    drawInputs(where);
    drawOutput(o, where);
    writeSum(where);
  }

  // ---- settings change --------------------------------------------------------------------------

  function reshape() {  // new channels or kernel size: a named kernel again, or the custom one
    if (values.kernel === "custom" && weights[0].length === values.kernel_size) {
      if (weights.length !== values.channels) {   // 1 → 3: split the kernel; 3 → 1: add the slices
        const total = weights[0].map((row, a) => row.map((_, b) =>
          weights.reduce((acc, plane) => acc + plane[a][b], 0)));
        weights = CHANNELS[values.channels].map(() =>
          total.map((row) => row.map((w) => w / values.channels)));
      }
    } else {
      if (values.kernel === "custom") values.kernel = lastNamed;
      kernelSelect.value = values.kernel;
      weights = presetWeights(values.kernel, values.kernel_size, values.channels);
    }
    buildPlanes();
  }

  channelSelect.addEventListener("change", () => {
    values.channels = Number(channelSelect.value);
    reshape(); save(); draw();
  });
  kernelSelect.addEventListener("change", () => {
    if (kernelSelect.value === "custom") { values.kernel = "custom"; save(); return; }
    values.kernel = lastNamed = kernelSelect.value;
    weights = presetWeights(values.kernel, values.kernel_size, values.channels);
    buildPlanes(); save(); draw();
  });
  for (const [name, { input }] of Object.entries(sliders)) {
    input.addEventListener("input", () => {
      values[name] = Number(input.value);
      if (name === "kernel_size") reshape();
      save(); draw();
    });
  }
  const setBias = () => {
    const v = biasInput.valueAsNumber;
    if (!Number.isFinite(v) || v === values.bias) return;
    values.bias = v;
    save(); draw();
  };
  biasInput.addEventListener("input", setBias);
  biasInput.addEventListener("change", () => {
    setBias();
    if (!Number.isFinite(biasInput.valueAsNumber)) biasInput.value = values.bias;
  });
  speedSelect.addEventListener("change", () => {
    values.speed = speedSelect.value;
    save();
    if (timer !== null) { clearInterval(timer); timer = setInterval(tick, SPEEDS[values.speed]); }
  });

  const top = document.createElement("div");
  top.className = "top";
  top.append(controls, side);
  const work = document.createElement("div");
  work.className = "work";
  work.append(planes, result);
  root.append(top, work);
  root.dataset.playing = "false";
  buildPlanes();
  draw();
  el.appendChild(root);
  return () => stop();
}

export default { render };
