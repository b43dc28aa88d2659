"""The HTTP service: the app factory, authentication, the handlers, readiness and metrics, the
API description, the server process, and the camera vendors' formats (`cameras/`)."""
