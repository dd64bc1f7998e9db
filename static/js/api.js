// Tiny client for the convlens JSON API v1. Every error comes back as {error: {code, message, request_id}}.
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `request failed (${status})`);
    this.status = status;
    this.code = err.code || "http_error";
    this.requestId = err.request_id || "";
  }
}

async function json(response) {
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export const listModels = () => fetch("/api/v1/models").then(json);
export const getModel = (id) => fetch(`/api/v1/models/${encodeURIComponent(id)}`).then(json);

export function analyze(modelId, blob) {
  const form = new FormData();
  form.append("image", blob, "upload");
  return fetch(`/api/v1/models/${encodeURIComponent(modelId)}/analyze`, { method: "POST", body: form }).then(json);
}

export const getLayerMaps = (analysisId, layer) =>
  fetch(`/api/v1/analyses/${analysisId}/layers/${encodeURIComponent(layer)}`).then(json);
export const getChannel = (analysisId, layer, channel) =>
  fetch(`/api/v1/analyses/${analysisId}/layers/${encodeURIComponent(layer)}/channels/${channel}`).then(json);
export const getReceptiveField = (modelId, layer, y, x) =>
  fetch(`/api/v1/models/${encodeURIComponent(modelId)}/layers/${encodeURIComponent(layer)}/receptive-field?y=${y}&x=${x}`).then(json);
