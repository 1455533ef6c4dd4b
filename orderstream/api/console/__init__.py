"""The web console: server-rendered pages (Jinja2) for the people who run the shop, made live by two small vendored
libraries (htmx for partial updates, uPlot for charts; nothing loads from a CDN).

Every page reads through the same core functions as the HTTP API and the CLI (views/queries, ops/status, ops/dlq);
commands (cancel, ship, deliver) are sent by the browser to the HTTP API's own endpoints. pages.py is the router,
templates/ and static/ what it serves.
"""

from orderstream.api.console.pages import public_request, router

__all__ = ["public_request", "router"]
