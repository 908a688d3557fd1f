// Draw-a-digit explorer: the chapter's trained LeNet-5 reads what the reader draws. The weights,
// ten MNIST test digits and the preprocessing constants come from the saved state
// (cnn_course/widgets/digit_explorer.py); lenet_forward.js, bundled before this file, runs the
// network. For the tests, the explorer's root element (.digit-explorer) carries
// `_lenet = { forward, preprocess, receptiveFields }`: this explorer's own forward pass and
// preprocessing, nothing global.

// ---- preprocessing: preprocess_drawing in digit_explorer.py, step by step -------------------
// ink: an array of rows of values in [0, 1] (0 = background).

// Step 3: the pixels with ink > 0, as { top, left, height, width }; null when there are none.
function inkBoundingBox(ink) {
  let top = -1, bottom = -1, left = Infinity, right = -1;
  for (let i = 0; i < ink.length; i++) {
    const row = ink[i];
    for (let j = 0; j < row.length; j++) {
      if (row[j] > 0) {
        if (top < 0) top = i;
        bottom = i;
        left = Math.min(left, j);
        right = Math.max(right, j);
      }
    }
  }
  return top < 0 ? null : { top, left, height: bottom - top + 1, width: right - left + 1 };
}

// Step 4: the longer side becomes `box` pixels, the shorter keeps the aspect ratio.
function scaledSize(height, width, box) {
  const longer = Math.max(height, width);
  const scale = (side) => (side === longer ? box
    : Math.max(1, Math.floor(side * box / longer + 0.5)));
  return [scale(height), scale(width)];
}

// Area averaging of a line of n pixels into m: new pixel t covers [t n / m, (t + 1) n / m) and
// takes each source pixel s with the share of that interval that [s, s + 1) covers.
// Returns, for each t, its [s, weight] pairs (the weights sum to 1).
function areaWeights(n, m) {
  const taps = [];
  for (let t = 0; t < m; t++) {
    const low = t * n / m, high = (t + 1) * n / m;
    const row = [];
    for (let s = Math.floor(low); s < Math.ceil(high); s++) {
      row.push([s, (Math.min(high, s + 1) - Math.max(low, s)) / (high - low)]);
    }
    taps.push(row);
  }
  return taps;
}

// Rows first, then columns.
function resizeArea(image, newHeight, newWidth) {
  const width = image[0].length;
  const byRows = areaWeights(image.length, newHeight).map((taps) => {
    const row = new Float64Array(width);
    for (const [s, weight] of taps) {
      for (let j = 0; j < width; j++) row[j] += weight * image[s][j];
    }
    return row;
  });
  const columnTaps = areaWeights(width, newWidth);
  return byRows.map((row) => Float64Array.from(columnTaps,
    (taps) => taps.reduce((sum, [s, weight]) => sum + weight * row[s], 0)));
}

// Step 5: the ink-weighted centre [row, column]; pixel i's centre is at i + 0.5.
function centreOfMass(image) {
  let total = 0, rows = 0, cols = 0;
  image.forEach((row, i) => row.forEach((v, j) => {
    total += v;
    rows += v * (i + 0.5);
    cols += v * (j + 0.5);
  }));
  return [rows / total, cols / total];
}

// The shift that brings the centre of mass nearest to the field's centre, clamped so that the
// whole digit stays inside the field.
function centringOffset(com, side, field) {
  const offset = Math.floor(field / 2 - com + 0.5);
  return Math.min(Math.max(offset, 0), field - side);
}

// Steps 3-5: a centred field x field digit in [0, 1], or null when there is no ink (step 2).
function centreDigit(ink, prep) {
  const box = inkBoundingBox(ink);
  if (box === null) return null;
  const cropped = [];
  for (let i = 0; i < box.height; i++) {
    cropped.push(Array.from(ink[box.top + i]).slice(box.left, box.left + box.width));
  }
  const [height, width] = scaledSize(box.height, box.width, prep.box);
  const digit = resizeArea(cropped, height, width);
  const [comRow, comCol] = centreOfMass(digit);
  const top = centringOffset(comRow, height, prep.field);
  const left = centringOffset(comCol, width, prep.field);
  const field = Array.from({ length: prep.field }, () => new Float64Array(prep.field));
  digit.forEach((row, i) => row.forEach((v, j) => { field[top + i][left + j] = v; }));
  return field;
}

// Step 6: pad with black and normalize, as mnist_tensors(pad_to_32=True). Returns rows.
function lenetInput(field, prep) {
  const size = prep.field + 2 * prep.pad;
  const image = Array.from({ length: size }, () => new Float64Array(size));
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const r = i - prep.pad, c = j - prep.pad;
      const inside = r >= 0 && r < prep.field && c >= 0 && c < prep.field;
      image[i][j] = ((inside ? field[r][c] : 0) - prep.mean) / prep.std;
    }
  }
  return image;
}

// Steps 1-6 for an ink image: LeNet-5's input [32][32], or null when there is no ink.
function preprocessInk(ink, prep) {
  const field = centreDigit(ink, prep);
  return field === null ? null : lenetInput(field, prep);
}

// Step 1 for the drawing pad: the ink is the canvas's opacity (strokes are white on a
// transparent canvas shown over black).
function inkFromCanvas(canvas) {
  const { data, width, height } = canvas.getContext("2d")
    .getImageData(0, 0, canvas.width, canvas.height);
  return Array.from({ length: height },
    (_, i) => Float64Array.from({ length: width }, (__, j) => data[4 * (i * width + j) + 3] / 255));
}

// ---- receptive fields ----------------------------------------------------------------------

// Without padding, cell (i, j) of a stage sees input rows i * jump .. i * jump + size - 1 (and
// the same columns): each layer widens the window by (kernel - 1) steps of the input pixels
// its cells are apart, and multiplies that spacing by its stride.
function receptiveFields(stages, order) {
  const fields = {};
  let size = 1, jump = 1;
  for (const name of order) {
    const { kernel, stride } = stages[name];
    size += (kernel - 1) * jump;
    jump *= stride;
    fields[name] = { size, jump };
  }
  return fields;
}

// ---- drawing -------------------------------------------------------------------------------

const STAGE_ORDER = ["c1", "s2", "c3", "s4"];
const STAGE_TEXT = {
  c1: N_("convolution, after ReLU"), s2: N_("max pooling"), c3: N_("convolution, after ReLU"),
  s4: N_("max pooling"),
};
// A dark-to-bright colour scale (close to matplotlib's "inferno"), so that strong activations
// stand out like the white ink of the input.
const SCALE = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
  [245, 125, 21], [250, 193, 39], [252, 255, 164]];
const MARK = "#00d5ff";

function scaleColour(t) {
  const x = Math.max(0, Math.min(1, t)) * (SCALE.length - 1);
  const k = Math.min(Math.floor(x), SCALE.length - 2), f = x - k;
  return SCALE[k].map((a, n) => Math.round(a + f * (SCALE[k + 1][n] - a)));
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Changes a live region only when its text changes, so that screen readers are not told the
// same thing at every frame of a stroke.
function say(node, text, html = false) {
  if (html ? node.innerHTML !== text : node.textContent !== text) {
    if (html) node.innerHTML = text;
    else node.textContent = text;
  }
}

function paint(canvas, values, colour) {
  const size = values.length;
  const ctx = canvas.getContext("2d");
  const picture = ctx.createImageData(size, size);
  values.forEach((row, i) => row.forEach((v, j) => {
    const [r, g, b] = colour(v);
    picture.data.set([r, g, b, 255], 4 * (i * size + j));
  }));
  ctx.putImageData(picture, 0, 0);
}

function stageSizes(stages, inputSize) {
  const sizes = {};
  let size = inputSize, channels = 1;
  for (const name of STAGE_ORDER) {
    const { kernel, stride } = stages[name];
    size = Math.floor((size - kernel) / stride) + 1;
    if (stages[name].channels) channels = stages[name].channels;
    sizes[name] = { size, channels };
  }
  return sizes;
}

function render({ model, el }) {
  useLanguage(model, el);
  const weights = decodeWeights(model.get("lenet_weights"));
  const stages = model.get("stages");
  const prep = model.get("preprocessing");
  const samples = model.get("samples");
  const inputSize = prep.field + 2 * prep.pad;
  const fields = receptiveFields(stages, STAGE_ORDER);
  const sizes = stageSizes(stages, inputSize);
  const black = (0 - prep.mean) / prep.std, white = (1 - prep.mean) / prep.std;

  const root = element("div", "cnn-explorer digit-explorer");
  root._lenet = {
    forward: (input) => lenetForward(weights, input, stages),
    preprocess: (ink) => preprocessInk(ink, prep),
    receptiveFields: fields,
  };

  // -- 1. the drawing pad and the MNIST digits
  const drawPanel = element("section", "dx-panel dx-draw");
  const padTitle = element("p", "dx-title", t("Draw a digit"));
  const pad = element("canvas", "dx-pad");
  pad.width = pad.height = 280;
  pad.setAttribute("role", "img");
  pad.setAttribute("aria-label", t("Drawing pad: draw a digit here with the mouse, a finger or a pen, in white on black like MNIST. The MNIST digit buttons below work from the keyboard."));
  const padCtx = pad.getContext("2d");
  const clear = element("button", "dx-clear", t("Clear"));
  clear.type = "button";
  const hint = element("span", "dx-hint", "");
  const actions = element("div", "dx-actions");
  actions.append(clear, hint);
  const sampleLabel = element("p", "dx-title dx-small", t("Or pick an MNIST test digit:"));
  sampleLabel.id = `dx-samples-${Math.random().toString(36).slice(2, 8)}`;
  const sampleBox = element("div", "dx-samples");
  sampleBox.setAttribute("role", "group");
  sampleBox.setAttribute("aria-labelledby", sampleLabel.id);
  const sampleButtons = samples.map((sample, n) => {
    const button = element("button", "dx-sample", String(sample.label));
    button.type = "button";
    button.title = t("MNIST test image {index}, labelled {label}", sample);
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => showSample(n));
    sampleBox.append(button);
    return button;
  });
  drawPanel.append(padTitle, pad, actions, sampleLabel, sampleBox);

  // -- 2. the 32x32 input, with the receptive-field outline
  const seenPanel = element("section", "dx-panel dx-seen");
  const seenTitle = element("p", "dx-title",
    t("What LeNet-5 sees ({size} × {size})", { size: inputSize }));
  const view = element("div", "dx-input-view");
  const inputCanvas = element("canvas", "dx-input");
  inputCanvas.width = inputCanvas.height = inputSize;
  inputCanvas.setAttribute("role", "img");
  inputCanvas.setAttribute("aria-label", t("The {size} × {size} normalized input that LeNet-5 reads: the digit scaled and centred as MNIST's digits were, with a {pad}-pixel black border.", { size: inputSize, pad: prep.pad }));
  const overlay = document.createElementNS(SVG, "svg");
  overlay.setAttribute("viewBox", `0 0 ${inputSize} ${inputSize}`);
  overlay.setAttribute("role", "img");
  overlay.setAttribute("aria-label", t("Outline of the receptive field of the selected cell"));
  const frame = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ x: prep.pad, y: prep.pad, width: prep.field,
    height: prep.field, class: "dx-field" })) frame.setAttribute(k, v);
  const rf = document.createElementNS(SVG, "rect");
  rf.setAttribute("class", "dx-rf");
  rf.setAttribute("visibility", "hidden");
  overlay.append(frame, rf);
  view.append(inputCanvas, overlay);
  const signed = (v) => v.toFixed(2).replace("-", "−");
  const seenNote = element("p", "dx-note", t("Black is {black} and white {white} after normalizing with MNIST's mean {mean} and standard deviation {std}; the dashed square is the {field} × {field} MNIST field.", { black: signed(black), white: signed(white), mean: prep.mean, std: prep.std, field: prep.field }));
  seenPanel.append(seenTitle, view, seenNote);

  // -- 3. the prediction
  const resultPanel = element("section", "dx-panel dx-result");
  const resultTitle = element("p", "dx-title", t("What it reads"));
  const readout = element("p", "dx-readout");
  readout.setAttribute("aria-live", "polite");
  const bars = element("div", "dx-bars");
  const barRows = Array.from({ length: 10 }, (_, digit) => {
    const row = element("div", "dx-bar-row");
    const label = element("span", "dx-digit", String(digit));
    const track = element("span", "dx-track");
    const fill = element("span", "dx-fill");
    track.append(fill);
    const value = element("span", "dx-value", "");
    row.append(label, track, value);
    bars.append(row);
    return { row, fill, value };
  });
  resultPanel.append(resultTitle, readout, bars);

  const top = element("div", "dx-top");
  top.append(drawPanel, seenPanel, resultPanel);

  // -- 4. the feature maps
  const mapsPanel = element("section", "dx-maps");
  const mapsTitle = element("p", "dx-title", t("Inside the network: every feature map"));
  const mapsHint = element("p", "dx-note", t("Point at a cell of any map, or focus a map with the Tab key and move with the arrow keys: the input's pixels that the cell depends on (its receptive field) are outlined on the input. Colours run from 0 (dark) to the largest value in the layer (bright)."));
  const cellReadout = element("p", "dx-cell-readout");
  cellReadout.setAttribute("aria-live", "polite");
  mapsPanel.append(mapsTitle, mapsHint, cellReadout);
  const tiles = {};
  const legends = {};
  const cursor = {};
  for (const name of STAGE_ORDER) {
    const { size, channels } = sizes[name];
    cursor[name] = [Math.floor(size / 2), Math.floor(size / 2)];
    const block = element("div", `dx-stage dx-stage-${name}`);
    const head = element("div", "dx-stage-head");
    const caption = element("span", "dx-stage-name");
    caption.innerHTML = `<b>${name.toUpperCase()}</b> `
      + t("{kind}: {channels} maps of {size} × {size}", { kind: t(STAGE_TEXT[name]), channels, size });
    const legend = element("span", "dx-legend");
    const low = element("span", "", "0");
    const ramp = element("span", "dx-ramp");
    const stops = SCALE.map((c) => `rgb(${c})`).join(", ");
    ramp.style.background = `linear-gradient(to right, ${stops})`;
    const high = element("span", "dx-legend-max", "");
    legend.append(low, ramp, high);
    legends[name] = high;
    head.append(caption, legend);
    const grid = element("div", "dx-grid");
    grid.style.setProperty("--dx-columns", Math.min(channels, 8));
    tiles[name] = Array.from({ length: channels }, (_, m) => {
      const tile = element("div", "dx-map");
      tile.tabIndex = 0;
      tile.setAttribute("role", "group");
      const about = { stage: name.toUpperCase(), map: m + 1, channels, size };
      tile.setAttribute("aria-label", t("{stage} map {map} of {channels}, {size} × {size} cells; the arrow keys move the selected cell", about));
      tile.dataset.stage = name;
      tile.dataset.map = String(m);
      const canvas = element("canvas");
      canvas.width = canvas.height = size;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", t("{stage} map {map}: its values as colours, 0 dark, the layer's largest value bright", about));
      const mark = element("span", "dx-mark");
      tile.append(canvas, mark);
      const pick = (event) => {
        const box = tile.getBoundingClientRect();
        const j = Math.floor((event.clientX - box.left) / box.width * size);
        const i = Math.floor((event.clientY - box.top) / box.height * size);
        cursor[name] = [Math.min(size - 1, Math.max(0, i)), Math.min(size - 1, Math.max(0, j))];
        select(name, m);
      };
      tile.addEventListener("pointermove", pick);
      tile.addEventListener("pointerdown", pick);
      tile.addEventListener("focus", () => select(name, m));
      tile.addEventListener("keydown", (event) => {
        const step = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1],
          ArrowRight: [0, 1] }[event.key];
        if (!step) return;
        event.preventDefault();
        const [i, j] = cursor[name];
        cursor[name] = [Math.min(size - 1, Math.max(0, i + step[0])),
          Math.min(size - 1, Math.max(0, j + step[1]))];
        select(name, m);
      });
      grid.append(tile);
      return { tile, canvas, mark };
    });
    block.append(head, grid);
    mapsPanel.append(block);
  }

  // -- state and updates
  let mode = "sample";   // "sample": an MNIST digit is shown; "draw": the pad's drawing
  let sampleIndex = 0;
  let result = null;     // the last forward pass, or null when there is no input
  let selected = null;   // { stage, map }: the cell is cursor[stage]

  function select(stage, map) {
    selected = { stage, map };
    showSelection();
  }

  function showSelection() {
    for (const name of STAGE_ORDER) for (const t of tiles[name]) t.mark.style.display = "none";
    if (!selected) {
      rf.setAttribute("visibility", "hidden");
      say(cellReadout, t("No cell selected yet."));
      return;
    }
    const { stage, map } = selected;
    const { size } = sizes[stage];
    const [i, j] = cursor[stage];
    const mark = tiles[stage][map].mark;
    Object.assign(mark.style, { display: "block", left: `${100 * j / size}%`,
      top: `${100 * i / size}%`, width: `${100 / size}%`, height: `${100 / size}%` });
    const { size: span, jump } = fields[stage];
    const row0 = i * jump, col0 = j * jump;
    for (const [k, v] of Object.entries({ x: col0, y: row0, width: span, height: span })) {
      rf.setAttribute(k, v);
    }
    rf.setAttribute("visibility", "visible");
    const value = result ? ` = ${result[stage][map][i][j].toFixed(2)}` : "";
    say(cellReadout, t("{stage} map {map}, cell (row {i}, column {j}){value}: its receptive field is input rows {top}–{bottom} and columns {left}–{right}, a {span} × {span} window of the {size} × {size} input.", { stage: stage.toUpperCase(), map: map + 1, i, j, value, top: row0, bottom: row0 + span - 1, left: col0, right: col0 + span - 1, span, size: inputSize }));
  }

  function showSampleOnPad(sample) {
    const small = element("canvas");
    small.width = small.height = prep.field;
    const picture = small.getContext("2d").createImageData(prep.field, prep.field);
    sample.pixels.forEach((row, i) => row.forEach((v, j) => {
      picture.data.set([255, 255, 255, v], 4 * (i * prep.field + j));
    }));
    small.getContext("2d").putImageData(picture, 0, 0);
    padCtx.clearRect(0, 0, pad.width, pad.height);
    padCtx.imageSmoothingEnabled = false;
    padCtx.drawImage(small, 0, 0, pad.width, pad.height);
  }

  function showSample(n) {
    mode = "sample";
    sampleIndex = n;
    showSampleOnPad(samples[n]);
    update();
  }

  function currentInput() {
    if (mode === "sample") {
      const field = samples[sampleIndex].pixels.map((row) => row.map((v) => v / 255));
      return lenetInput(field, prep);
    }
    return preprocessInk(inkFromCanvas(pad), prep);
  }

  function update() {
    sampleButtons.forEach((b, n) => b.setAttribute("aria-pressed",
      String(mode === "sample" && n === sampleIndex)));
    hint.textContent = mode === "sample"
      ? t("MNIST test image {index}; draw on the pad to replace it.", samples[sampleIndex]) : "";
    const input = currentInput();
    const ctx = inputCanvas.getContext("2d");
    if (input === null) {
      result = null;
      ctx.clearRect(0, 0, inputSize, inputSize);
      for (const name of STAGE_ORDER) {
        for (const { canvas } of tiles[name]) {
          canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
        }
        legends[name].textContent = "";
      }
      for (const bar of barRows) {
        bar.fill.style.width = "0%";
        bar.value.textContent = "";
        bar.row.classList.remove("dx-predicted");
      }
      say(readout, `${t("Draw a digit")}<span data-result="prediction" hidden=""></span>`, true);
      showSelection();
      return;
    }
    result = lenetForward(weights, [input], stages);
    paint(inputCanvas, input, (v) => {
      const grey = Math.round(255 * Math.max(0, Math.min(1, v * prep.std + prep.mean)));
      return [grey, grey, grey];
    });
    for (const name of STAGE_ORDER) {
      let largest = 0;
      for (const map of result[name]) for (const row of map) for (const v of row) {
        largest = Math.max(largest, v);
      }
      result[name].forEach((map, m) => paint(tiles[name][m].canvas, map,
        (v) => scaleColour(largest > 0 ? v / largest : 0)));
      legends[name].textContent = largest.toFixed(2);
    }
    const probabilities = Array.from(result.probabilities);
    const best = probabilities.indexOf(Math.max(...probabilities));
    barRows.forEach((bar, digit) => {
      const p = probabilities[digit];
      bar.fill.style.width = `${(100 * p).toFixed(1)}%`;
      bar.value.textContent = p.toFixed(2);
      bar.row.classList.toggle("dx-predicted", digit === best);
    });
    const read = { label: samples[sampleIndex].label, p: probabilities[best].toFixed(2),
      digit: `<b data-result="prediction">${best}</b>` };
    say(readout, mode === "sample"
      ? t("MNIST test digit labelled {label}: LeNet-5 reads {digit} (probability {p})", read)
      : t("LeNet-5 reads {digit} (probability {p})", read), true);
    showSelection();
  }

  // -- drawing with Pointer Events (mouse, finger or pen)
  let stroke = null;
  let frameRequest = 0;
  function schedule() {
    if (!frameRequest) {
      frameRequest = requestAnimationFrame(() => { frameRequest = 0; update(); });
    }
  }
  function padPoint(event) {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) * pad.width / box.width,
      (event.clientY - box.top) * pad.height / box.height];
  }
  Object.assign(padCtx, { lineWidth: 20, lineCap: "round", lineJoin: "round",
    strokeStyle: "#fff", fillStyle: "#fff" });
  pad.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    if (mode === "sample") {
      mode = "draw";
      padCtx.clearRect(0, 0, pad.width, pad.height);
    }
    pad.setPointerCapture?.(event.pointerId);
    stroke = padPoint(event);
    padCtx.beginPath();
    padCtx.arc(stroke[0], stroke[1], padCtx.lineWidth / 2, 0, 2 * Math.PI);
    padCtx.fill();
    schedule();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    const points = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    padCtx.beginPath();
    padCtx.moveTo(...stroke);
    for (const e of points.length ? points : [event]) {
      stroke = padPoint(e);
      padCtx.lineTo(...stroke);
    }
    padCtx.stroke();
    schedule();
  });
  const endStroke = () => { stroke = null; };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  clear.addEventListener("click", () => {
    mode = "draw";
    padCtx.clearRect(0, 0, pad.width, pad.height);
    update();
  });

  root.append(top, mapsPanel);
  el.appendChild(root);
  showSample(0);
}

export default { render };
