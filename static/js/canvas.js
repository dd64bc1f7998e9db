// Canvas helpers: load PNGs, read their grey levels, draw crisp pixel-art scaled images.

export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.decoding = "async";
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`could not load ${url}`));
    image.src = url;
  });
}

// Grey level (0–255) of every pixel of a greyscale PNG, row-major.
export function grayLevels(image) {
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(image, 0, 0);
  const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const gray = new Uint8Array(canvas.width * canvas.height);
  for (let p = 0; p < gray.length; p += 1) gray[p] = rgba[p * 4];
  return { width: canvas.width, height: canvas.height, data: gray };
}

// Size a canvas for `cssWidth`×`cssHeight` CSS pixels on this screen; returns its 2-d context
// already scaled so drawing code works in CSS pixels.
export function fitCanvas(canvas, cssWidth, cssHeight) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.imageSmoothingEnabled = false;
  return context;
}

// ImageData → a canvas usable with drawImage (scaling without blur).
export function bitmapOf(imageData) {
  const canvas = document.createElement("canvas");
  canvas.width = imageData.width;
  canvas.height = imageData.height;
  canvas.getContext("2d").putImageData(imageData, 0, 0);
  return canvas;
}

// Which cell of a `cols`×`rows` grid drawn at `cell` CSS px (with `gap`) a pointer event is over.
export function cellAt(event, canvas, cell, gap, cols, rows) {
  const rect = canvas.getBoundingClientRect();
  const x = event.clientX - rect.left;
  const y = event.clientY - rect.top;
  const col = Math.floor(x / (cell + gap));
  const row = Math.floor(y / (cell + gap));
  if (col < 0 || row < 0 || col >= cols || row >= rows) return null;
  return { row, col };
}

export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
