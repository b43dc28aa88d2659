"""The web console for the enforcement office (`/console`): static files and the route serving
them. The pages use the JSON API only, with the session cookie (routes.py explains the
headers)."""
