// Swagger UI over this service's own document. A file, not an inline <script>: the page's
// Content-Security-Policy allows scripts from this origin only.
// tryItOutEnabled: calls can be made at once; "Authorize" takes an API key for the `bearer`
// security scheme the document declares. validatorUrl null: the public validator is never
// called (nothing leaves this origin). persistAuthorization stays off: a key is not written
// to localStorage.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  tryItOutEnabled: true,
  deepLinking: true,
  validatorUrl: null,
  displayRequestDuration: true,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
});
