// Every number a panel shows, fetched once and kept: exact channel values, atlases, filters.
// Keys include the analysis id, so a new drawing never reads a previous drawing's numbers.
import * as api from "./api.js";
import { grayLevels, loadImage } from "./canvas.js";

const MAX_ENTRIES = 400;
const cache = new Map();

function remember(key, make) {
  if (cache.has(key)) {
    const hit = cache.get(key);
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const promise = make();
  cache.set(key, promise);
  promise.catch(() => cache.delete(key));
  while (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value);
  return promise;
}

// Exact float values of one channel as {shape, values: Float64Array row-major, min, max}.
export function channelValues(analysisId, layer, channel) {
  return remember(`channel|${analysisId}|${layer}|${channel}`, async () => {
    const body = layer === "input"
      ? await api.getInputChannel(analysisId, channel)
      : await api.getChannel(analysisId, layer, channel);
    return { shape: body.shape, values: Float64Array.from(body.values.flat()), min: body.min, max: body.max };
  });
}

// The layer's atlas layout, per-tile ranges and grey levels.
export function layerAtlas(analysisId, layer) {
  return remember(`atlas|${analysisId}|${layer}`, async () => {
    const meta = await api.getLayerMaps(analysisId, layer);
    const image = await loadImage(meta.atlas_url);
    return { meta, gray: grayLevels(image) };
  });
}

// Every number behind one unit (the explain panel's single source): see api.getUnitMath.
export const unitMath = (analysisId, layer, { channel, y = 0, x = 0 }) =>
  remember(`unit|${analysisId}|${layer}|${channel}|${y}|${x}`, () => api.getUnitMath(analysisId, layer, { channel, y, x }));

export const im2col = (analysisId, layer, { channel, y, x }) =>
  remember(`im2col|${analysisId}|${layer}|${channel}|${y}|${x}`, () => api.getIm2col(analysisId, layer, { channel, y, x }));
export const folded = (analysisId, layer, { channel, y, x }) =>
  remember(`folded|${analysisId}|${layer}|${channel}|${y}|${x}`, () => api.getFolded(analysisId, layer, { channel, y, x }));
export const separable = (modelId) => remember(`separable|${modelId}`, () => api.getSeparable(modelId));

export const models = () => remember("models", () => api.listModels());
export const model = (modelId) => remember(`model|${modelId}`, () => api.getModel(modelId));
export const filters = (modelId, layer) => remember(`filters|${modelId}|${layer}`, () => api.getFilters(modelId, layer));
export const filter = (modelId, layer, o) => remember(`filter|${modelId}|${layer}|${o}`, () => api.getFilter(modelId, layer, o));

// Tile `index` of an atlas as real numbers: grey level g ↦ min + g/255·(max − min).
export function tileValues(atlas, index) {
  const { meta, gray } = atlas;
  const layout = meta.atlas;
  const row = Math.floor(index / layout.cols);
  const col = index % layout.cols;
  const top = row * (layout.tile_height + layout.gap);
  const left = col * (layout.tile_width + layout.gap);
  const low = meta.minimums[index];
  const span = meta.maximums[index] - low;
  const values = new Float64Array(layout.tile_height * layout.tile_width);
  for (let y = 0; y < layout.tile_height; y += 1) {
    for (let x = 0; x < layout.tile_width; x += 1) {
      values[y * layout.tile_width + x] = low + (gray.data[(top + y) * gray.width + left + x] / 255) * span;
    }
  }
  return values;
}

// The index of the largest value, and the unit (y, x) holding a channel's largest value.
export function strongestIndex(values) {
  let best = 0;
  values.forEach((v, i) => { if (v > values[best]) best = i; });
  return best;
}

export function strongestUnit(channelData) {
  const best = strongestIndex(channelData.values);
  return { y: Math.floor(best / channelData.shape[1]), x: best % channelData.shape[1] };
}
