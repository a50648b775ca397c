"""The HTTP API: create_app(settings) builds it."""
