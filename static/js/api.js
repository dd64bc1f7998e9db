// Tiny client for the convlens JSON API v1. Every error comes back as {error: {code, message, request_id}}
// and is thrown as an ApiError {status, code, message, requestId, retryAfter}. A busy server's
// Retry-After is honoured: the request is sent again after it (see `request`).
export class ApiError extends Error {
  constructor(status, body, retryAfter = 0) {
    const err = (body && body.error) || {};
    super(err.message || `request failed (${status})`);
    this.status = status;
    this.code = err.code || (status === 0 ? "network_error" : "http_error");
    this.requestId = err.request_id || "";
    this.retryAfter = retryAfter;
  }
}

// A body that is not JSON reads as null (the status tells what happened); a request aborted while
// its body arrives stays an abort, never an empty success.
async function json(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    if (error.name === "AbortError") throw error;
    body = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, body, Number(response.headers.get("retry-after")) || 0);
  }
  return body;
}

function once(url, options) {
  return fetch(url, options).then(json, (error) => {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { error: { code: "network_error", message: String(error.message || error) } });
  });
}

// A full server (503 busy) or a rate limit (429) says when to come back (Retry-After): wait that
// long plus a random share, so a class that was turned away together does not return together.
const RETRY_STATUSES = [429, 503];
const MAX_RETRIES = 60;
const retryDelay = (seconds) => (Math.max(1, seconds) * (1 + 0.5 * Math.random())) * 1000;

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    }, { once: true });
  });
}

// `onWait(seconds)` is told before each wait (the page says it is waiting).
async function request(url, options = {}, { onWait = null } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await once(url, options);
    } catch (error) {
      const retry = error instanceof ApiError && RETRY_STATUSES.includes(error.status) && error.retryAfter > 0;
      if (!retry || attempt >= MAX_RETRIES) throw error;
      const delay = retryDelay(error.retryAfter);
      onWait?.(Math.ceil(delay / 1000));
      await sleep(delay, options.signal);
    }
  }
}

const part = encodeURIComponent;
const analysisBase = (analysisId) => `/api/v1/analyses/${part(analysisId)}`;
const layerBase = (modelId, layer) => `/api/v1/models/${part(modelId)}/layers/${part(layer)}`;

export const listModels = () => request("/api/v1/models");
export const getModel = (id) => request(`/api/v1/models/${part(id)}`);
export const getAnalysis = (analysisId) => request(analysisBase(analysisId));

export function analyze(modelId, blob, signal, onWait = null) {
  const form = new FormData();
  form.append("image", blob, "upload");
  return request(`/api/v1/models/${part(modelId)}/analyze`, { method: "POST", body: form, signal }, { onWait });
}

export const getLayerMaps = (analysisId, layer) =>
  request(`${analysisBase(analysisId)}/layers/${part(layer)}`);
export const getChannel = (analysisId, layer, channel) =>
  request(`${analysisBase(analysisId)}/layers/${part(layer)}/channels/${channel}`);
export const getInputChannel = (analysisId, channel) =>
  request(`${analysisBase(analysisId)}/input/channels/${channel}`);

// One unit's arithmetic redone by the server from the layer's real input (vector layers: y, x unused).
export const getUnitMath = (analysisId, layer, { channel, y = 0, x = 0 }) =>
  request(`${analysisBase(analysisId)}/layers/${part(layer)}/unit?${new URLSearchParams({ channel, y, x })}`);

// A conv unit as one row × one column of the layer's matrix product; folded with its batch norm.
export const getIm2col = (analysisId, layer, { channel, y, x }) =>
  request(`${analysisBase(analysisId)}/layers/${part(layer)}/im2col?${new URLSearchParams({ channel, y, x })}`);
export const getFolded = (analysisId, layer, { channel, y, x }) =>
  request(`${analysisBase(analysisId)}/layers/${part(layer)}/folded?${new URLSearchParams({ channel, y, x })}`);
export const getSeparable = (modelId) => request(`/api/v1/models/${part(modelId)}/separable`);

export const getReceptiveField = (modelId, layer, y, x) =>
  request(`${layerBase(modelId, layer)}/receptive-field?y=${y}&x=${x}`);
export const getFilters = (modelId, layer) => request(`${layerBase(modelId, layer)}/filters`);
export const getFilter = (modelId, layer, outChannel) =>
  request(`${layerBase(modelId, layer)}/filters/${outChannel}`);

// Lessons, playground and gallery (lessons helper).
const postJson = (url, body) =>
  request(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
export const runPlayground = (operation, body) => postJson(`/api/v1/playground/${part(operation)}`, body);
export const getOutputSize = (params) => request(`/api/v1/playground/output-size?${new URLSearchParams(params)}`);
export const getPreset = (slug) => request(`/api/v1/lessons/presets/${part(slug)}`);
export const getSelfChecks = (slug) => request(`/api/v1/lessons/${part(slug)}/checks`);
export const answerSelfCheck = (slug, checkId, answer) =>
  postJson(`/api/v1/lessons/${part(slug)}/checks/${part(checkId)}`, { answer });
export function getNetwork(id, depth = null) {
  const query = depth ? `?depth=${depth}` : "";
  return request(`/api/v1/gallery/${part(id)}${query}`);
}

// Attribution (attribution helper): explanations of one analysis, and what units learned.
function withQuery(url, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  const text = query.toString();
  return text ? `${url}?${text}` : url;
}
export const getGradCam = (analysisId, params) => request(withQuery(`${analysisBase(analysisId)}/grad-cam`, params));
export const getSaliency = (analysisId, params) => request(withQuery(`${analysisBase(analysisId)}/saliency`, params));
export const getOcclusion = (analysisId, params) => request(withQuery(`${analysisBase(analysisId)}/occlusion`, params));
export const getLiveOcclusion = (analysisId, params) =>
  request(withQuery(`${analysisBase(analysisId)}/occlusion/live`, params));
export const getEffectiveRf = (analysisId, layer, params) =>
  request(withQuery(`${analysisBase(analysisId)}/layers/${part(layer)}/effective-receptive-field`, params));
export const getFeatureVis = (modelId, layer, channel) =>
  request(`${layerBase(modelId, layer)}/channels/${channel}/feature-vis`);
export const getTopPatches = (modelId, layer, channel) =>
  request(`${layerBase(modelId, layer)}/channels/${channel}/top-patches`);
export const getFirstLayerFilters = (modelId) => request(`/api/v1/models/${part(modelId)}/first-layer-filters`);
