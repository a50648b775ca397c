"""The web app that `rag serve` serves at /: plain HTML, CSS and JavaScript modules under
``static/``, shipped in the package, with no build step and nothing loaded from a CDN."""
