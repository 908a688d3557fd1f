// LeNet-5's forward pass in plain JavaScript, with the loops of Chapter 1's convolution
// exercise. A feature map stack is an array of channels, each an array of rows, each a
// Float64Array: x[c][i][j]. A tensor of weights is { shape, data } with data a Float32Array
// in PyTorch's order (row-major), so weight[o][c][a][b] is data[((o * C + c) * kH + a) * kW + b].
// The arithmetic is float64; the weights are the trained float32 values.

// Cross-correlation, as nn.Conv2d computes it (no padding): out[o][i][j] = bias[o] +
// sum over c, a, b of x[c][i * stride + a][j * stride + b] * weight[o][c][a][b].
function conv2d(x, weight, bias, stride) {
  const [cOut, cIn, kh, kw] = weight.shape;
  const height = x[0].length, width = x[0][0].length;
  const hOut = Math.floor((height - kh) / stride) + 1;
  const wOut = Math.floor((width - kw) / stride) + 1;
  const w = weight.data;
  const out = [];
  for (let o = 0; o < cOut; o++) {
    const map = [];
    for (let i = 0; i < hOut; i++) {
      const row = new Float64Array(wOut);
      for (let j = 0; j < wOut; j++) {
        let sum = 0;
        for (let c = 0; c < cIn; c++) {
          for (let a = 0; a < kh; a++) {
            const line = x[c][i * stride + a];
            const base = ((o * cIn + c) * kh + a) * kw;
            for (let b = 0; b < kw; b++) sum += line[j * stride + b] * w[base + b];
          }
        }
        row[j] = sum + bias.data[o];
      }
      map.push(row);
    }
    out.push(map);
  }
  return out;
}

// max(0, v) for every value of a vector or of a feature map stack (arrays of arrays).
function relu(x) {
  return x.map((v) => (typeof v === "number" ? Math.max(0, v) : relu(v)));
}

// The largest value of each kernel x kernel window, windows `stride` apart (no padding).
function max_pool2d(x, kernel, stride) {
  const height = x[0].length, width = x[0][0].length;
  const hOut = Math.floor((height - kernel) / stride) + 1;
  const wOut = Math.floor((width - kernel) / stride) + 1;
  return x.map((map) => {
    const out = [];
    for (let i = 0; i < hOut; i++) {
      const row = new Float64Array(wOut);
      for (let j = 0; j < wOut; j++) {
        let best = -Infinity;
        for (let a = 0; a < kernel; a++) {
          for (let b = 0; b < kernel; b++) {
            best = Math.max(best, map[i * stride + a][j * stride + b]);
          }
        }
        row[j] = best;
      }
      out.push(row);
    }
    return out;
  });
}

// A feature map stack as one vector, channel by channel, row by row (as nn.Flatten).
function flatten(x) {
  const values = [];
  for (const map of x) for (const row of map) values.push(...row);
  return Float64Array.from(values);
}

// out[o] = bias[o] + sum over i of weight[o][i] * x[i], as nn.Linear.
function linear(x, weight, bias) {
  const [nOut, nIn] = weight.shape;
  const out = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let sum = 0;
    for (let i = 0; i < nIn; i++) sum += weight.data[o * nIn + i] * x[i];
    out[o] = sum + bias.data[o];
  }
  return out;
}

// Probabilities from scores; subtracting the largest score first keeps exp() from overflowing.
function softmax(logits) {
  const top = Math.max(...logits);
  const exps = logits.map((z) => Math.exp(z - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

// weights: tensor name -> { shape, data } (the model's state_dict, e.g. "c1.weight");
// input: [1][32][32]; stages: kernel size and stride of c1, s2, c3, s4 (read from the PyTorch
// layers). Returns every stage: C1 and C3 after their ReLU.
function lenetForward(weights, input, stages) {
  const param = (name) => weights[name];
  const c1 = relu(conv2d(input, param("c1.weight"), param("c1.bias"), stages.c1.stride));
  const s2 = max_pool2d(c1, stages.s2.kernel, stages.s2.stride);
  const c3 = relu(conv2d(s2, param("c3.weight"), param("c3.bias"), stages.c3.stride));
  const s4 = max_pool2d(c3, stages.s4.kernel, stages.s4.stride);
  const c5 = relu(linear(flatten(s4), param("c5.weight"), param("c5.bias")));
  const f6 = relu(linear(c5, param("f6.weight"), param("f6.bias")));
  const logits = linear(f6, param("output.weight"), param("output.bias"));
  return { c1, s2, c3, s4, logits, probabilities: softmax(logits) };
}

// The weights as the page saved them (export_weights in cnn_course/widgets/digit_explorer.py):
// base64 strings of little-endian float32, decoded into Float32Arrays.
function decodeWeights(exported) {
  const tensors = {};
  for (const { name, shape, data } of exported.tensors) {
    const text = atob(data);
    const view = new DataView(new ArrayBuffer(text.length));
    for (let i = 0; i < text.length; i++) view.setUint8(i, text.charCodeAt(i));
    const values = new Float32Array(text.length / 4);
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
    tensors[name] = { shape, data: values };
  }
  return tensors;
}
