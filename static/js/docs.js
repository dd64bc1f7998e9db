// Starts the vendored Swagger UI on /openapi.json (kept out of the HTML so the CSP forbids inline scripts).
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({ url: root.dataset.openapiUrl, dom_id: "#swagger-ui", deepLinking: true });
