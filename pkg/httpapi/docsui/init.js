// Starts Swagger UI on the API's own contract. A file of its own because
// the page's Content-Security-Policy allows no inline script.
"use strict";
window.ui = SwaggerUIBundle({
  // Beside the page: /openapi.json for /docs, also behind a path prefix.
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  displayRequestDuration: true,
  // No validator badge: it would send the document to a third-party
  // service (BaseLayout shows none, and the page's CSP would block it).
  validatorUrl: null,
});
