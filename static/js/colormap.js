// Colour scales for feature maps and weights, and the legend that explains them.
// Sequential (viridis) for maps that are never negative; diverging (blue · white · red) for signed
// numbers, centred on 0 so the sign is readable at a glance.

const VIRIDIS = [
  [68, 1, 84], [72, 40, 120], [62, 73, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [110, 206, 88], [253, 231, 37],
];
const DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];

function table(stops) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i += 1) {
    const position = (i / 255) * (stops.length - 1);
    const low = Math.min(Math.floor(position), stops.length - 2);
    const f = position - low;
    for (let k = 0; k < 3; k += 1) lut[i * 3 + k] = stops[low][k] + f * (stops[low + 1][k] - stops[low][k]);
  }
  return lut;
}

const LUTS = { sequential: table(VIRIDIS), diverging: table(DIVERGING) };

// A scale maps a number to a LUT index: sequential spans [min, max]; diverging spans ±max|value|.
export function makeScale(min, max, mode = min < 0 ? "diverging" : "sequential") {
  if (mode === "diverging") {
    const extent = Math.max(Math.abs(min), Math.abs(max)) || 1;
    return { mode, min: -extent, max: extent, index: (v) => Math.round(((v / extent) + 1) * 127.5) };
  }
  const span = max - min || 1;
  return { mode, min, max, index: (v) => Math.round(((v - min) / span) * 255) };
}

export function colorOf(scale, value) {
  const lut = LUTS[scale.mode];
  const i = Math.max(0, Math.min(255, scale.index(value))) * 3;
  return [lut[i], lut[i + 1], lut[i + 2]];
}

export const cssColor = (scale, value) => `rgb(${colorOf(scale, value).join(",")})`;

// WCAG relative luminance of an sRGB colour (0 black … 1 white).
function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

// Text colour readable on top of a cell coloured by `scale`: black or white, whichever contrasts
// more (at least 4.58:1 on any colour, above WCAG AA's 4.5:1 for small text).
export function inkOn(scale, value) {
  const l = luminance(colorOf(scale, value));
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000" : "#fff";
}

// Paint numbers (row-major, `width` per row) into RGBA ImageData through `scale`.
export function paintValues(values, width, height, scale) {
  const image = new ImageData(width, height);
  const lut = LUTS[scale.mode];
  for (let p = 0; p < width * height; p += 1) {
    const i = Math.max(0, Math.min(255, scale.index(values[p]))) * 3;
    image.data.set([lut[i], lut[i + 1], lut[i + 2], 255], p * 4);
  }
  return image;
}

// A horizontal colour bar with its end values (and 0 for a diverging scale) under it.
// Drawn at the canvas's CSS size (which follows the text size) on this screen's pixel density.
export function drawLegend(canvas, scale, format) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 240;
  const height = canvas.clientHeight || 34;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  const barHeight = Math.round(height * 0.45);
  context.clearRect(0, 0, width, height);
  const lut = LUTS[scale.mode];
  for (let x = 0; x < width; x += 1) {
    const i = Math.round((x / (width - 1)) * 255) * 3;
    context.fillStyle = `rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`;
    context.fillRect(x, 0, 1, barHeight);
  }
  const style = getComputedStyle(canvas);
  context.fillStyle = style.color;
  context.font = `${Math.round(height * 0.38)}px ${style.fontFamily}`;
  context.textBaseline = "bottom";
  context.textAlign = "left";
  context.fillText(format(scale.min), 0, height);
  context.textAlign = "right";
  context.fillText(format(scale.max), width, height);
  if (scale.mode === "diverging") {
    context.textAlign = "center";
    context.fillText("0", width / 2, height);
  }
}
