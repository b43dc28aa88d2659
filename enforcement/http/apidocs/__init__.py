"""The API reference at `/docs`: Swagger UI, vendored in static/ (no CDN), rendering the
service's own `/openapi.json`; routes.py serves it under the console's strict CSP."""
