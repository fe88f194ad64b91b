// Ours, not Swagger's: starts Swagger UI on the service's own document. A file rather than an
// inline script, so the page's Content-Security-Policy can forbid inline scripts.
window.ui = SwaggerUIBundle({ url: "openapi.json", dom_id: "#swagger-ui" });
