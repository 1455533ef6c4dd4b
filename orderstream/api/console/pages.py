"""The console's pages: orders, one order, pipeline, sales and stock, dead letters.

Each page is one URL. A plain request (a browser navigating) gets the whole page; an htmx request (header HX-Request)
gets only the page's data fragment, which is how the pages refresh themselves without a reload. With an API token
set, a navigation cannot carry it (browsers send no Authorization header there), so it gets the page without its
data and the console's script fetches the fragment with the token it keeps in sessionStorage. The data always comes
from the same core functions the HTTP API and the CLI call; commands go from the browser to the API's endpoints.

Route handlers are plain functions (FastAPI runs them in its thread pool), or async where they wait (the order page
awaits the view's read-your-writes position, then renders in a worker thread), so a slow database or broker never
blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

from orderstream.api.console import formatting
from orderstream.api.console.ops_pages import load_dead_letters, load_pipeline, retry_letter
from orderstream.api.console.order_pages import PAGE_SIZES, SORT_LABELS, load_order, load_orders, load_sales
from orderstream.api.context import ApiContext
from orderstream.views.base import STATUSES
from orderstream.views.registry import ALL_SPECS
from orderstream.views.store import StoreError

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_FILES = frozenset(p.name for p in STATIC.iterdir() if p.is_file())
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".LICENSE": "text/plain"}

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(money=formatting.money, age=formatting.age, when=formatting.when)
templates.env.globals.update(statuses=STATUSES)

NAV = (
    ("orders", "Orders", "/"),
    ("pipeline", "Pipeline", "/console/pipeline"),
    ("sales", "Sales and stock", "/console/sales"),
    ("dead-letters", "Dead letters", "/console/dead-letters"),
)
SCARCE_BELOW = 10  # the default: a SKU with fewer units available than this is highlighted
PIPELINE_REFRESH_MS = 3000  # how often the pipeline page refreshes itself
STATUS_SAMPLE_S = 0.5  # a live refresh watches a consumer that is behind this long, to tell catching-up from stuck
AFTER_WAIT_S = 5.0  # the longest an order page refresh waits for the view to apply the event that triggered it

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _context(request: Request) -> ApiContext:
    """The context the API's lifespan built (api/context.py), read where the page needs it."""
    return request.state.context


PAGE_PATHS = frozenset({"/", "/console/pipeline", "/console/sales", "/console/dead-letters"})
PAGE_PREFIXES = ("/console/orders/", "/console/static/")


def public_request(scope: Scope) -> bool:
    """True for what may pass the API's token check without the token: a browser navigating to a console page (which
    then gets the page's frame without its data, see _render) and the console's static files. Never an htmx request
    (those load data), never anything but GET or HEAD."""
    if scope.get("method") not in ("GET", "HEAD"):
        return False
    path = scope.get("path", "")
    if path not in PAGE_PATHS and not path.startswith(PAGE_PREFIXES):
        return False
    return not any(name == b"hx-request" for name, _ in scope.get("headers", ()))


def _authorized(request: Request, settings) -> bool:
    """True when no API token is set, or the request carries it as a bearer token."""
    token = settings.api_token
    if token is None:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(value.encode(), token.get_secret_value().encode())


def _self_url(request: Request) -> str:
    """The page's own URL, for its refreshes: its query less `after` and `now` (which belong to one request only)."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k not in ("after", "now")])
    return request.url.path + (f"?{query}" if query else "")


def _is_fragment_request(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def _render(
    request: Request,
    page: str,
    title: str,
    load: Callable[[], dict[str, Any]],
    deferred: bool = False,
    **frame: Any,
) -> HTMLResponse:
    """The page (or, for htmx, its fragment) with the data `load` returns; without the token, the page's frame only.

    A fragment request without the token is refused with 401, which the console's script answers by asking for it.

    deferred: the data takes broker round trips (hundreds of ms), so the first response is the page without it and
    the script fetches it at once; ?now=1 (the link a browser without JavaScript follows) renders it inline."""
    context = _context(request)
    settings = context.settings
    fragment = _is_fragment_request(request)
    authorized = _authorized(request, settings)
    if fragment and not authorized:
        raise HTTPException(
            status_code=401, detail="this console needs the API token", headers={"WWW-Authenticate": "Bearer"}
        )
    values: dict[str, Any] = {
        "title": title,
        "page": page,
        "nav": NAV,
        "token_required": settings.api_token is not None,
        "loaded": authorized,
        "self_url": _self_url(request),
        "fragment": f"fragments/{page}.html",
        **frame,
    }
    values["deferred"] = deferred and not fragment and authorized and request.query_params.get("now") != "1"
    if values["deferred"]:
        values["loaded"] = False
    elif authorized:
        values |= load()
    name = "partial.html" if fragment else f"{page}.html"
    response = templates.TemplateResponse(request, name, values)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "HX-Request, Authorization"
    return response


# --- orders ------------------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def orders_page(
    request: Request,
    status: str = "",
    customer: str = "",
    since: str = "",
    sort: str = "placed_at",
    asc: bool = False,
    limit: int = 50,
    cursor: str = "",
) -> HTMLResponse:
    """Orders: filtered by status, customer and placed-at time, sorted, paged by cursor; counts by status on top."""

    def load() -> dict[str, Any]:
        return load_orders(
            _context(request).views,
            status=status,
            customer=customer,
            since=since,
            sort=sort,
            asc=asc,
            limit=limit,
            cursor=cursor,
        )

    form = {"status": status, "customer": customer, "since": since, "sort": sort, "asc": asc, "limit": limit}
    return _render(request, "orders", "Orders", load, form=form, sorts=SORT_LABELS, page_sizes=PAGE_SIZES)


@router.get("/console/orders/{order_id}", response_class=HTMLResponse)
async def order_page(request: Request, order_id: str, after: str = "") -> HTMLResponse:
    """One order: summary, lines, totals, payment and shipment, timeline; live from the order's event stream.

    after: the id of the last event the page's stream delivered (a log position of orders.events); the page waits
    (asynchronously, at most AFTER_WAIT_S) until the order view has applied it, so a refresh triggered by an event
    shows that event, not the view's state from a moment before."""
    context = _context(request)
    if after and _authorized(request, context.settings):
        await _view_applied(context, "order-view", after)
    found: dict[str, Any] = {}

    def load() -> dict[str, Any]:
        found.update(load_order(context.views, order_id))
        return found

    response = await asyncio.to_thread(_render, request, "order", f"Order {order_id}", load)
    if found and found.get("order") is None and found.get("problem") is None:
        response.status_code = 404
    return response


async def _view_applied(context, projection: str, after: str) -> None:
    """Wait until the view has applied the position `after`; past AFTER_WAIT_S (or for a position no view can reach)
    the page shows what the view has, and the next event refreshes it again."""
    from orderstream.ops.read_your_writes import TokenRefused, TokenUnreachable, ViewBehind, await_applied, parse_token

    try:
        token = parse_token(projection, after)
        model = await asyncio.to_thread(context.views.get, projection)
        await await_applied(
            context.settings, projection, token, AFTER_WAIT_S, model=model, watch=context.views.watch(projection)
        )
    except (TokenRefused, TokenUnreachable, ViewBehind, StoreError) as exc:
        log.info("console: showing %s without waiting for %s: %s", projection, after, exc)


# --- pipeline ----------------------------------------------------------------------------------------------------


@router.get("/console/pipeline", response_class=HTMLResponse)
def pipeline_page(request: Request) -> HTMLResponse:
    """Every consumer and partition: lag, last event age, state; topic and broker health. Refreshes itself."""
    sample_s = STATUS_SAMPLE_S if _is_fragment_request(request) else 0.0
    return _render(
        request,
        "pipeline",
        "Pipeline",
        lambda: load_pipeline(_context(request).settings, sample_s),
        deferred=True,
        refresh_ms=PIPELINE_REFRESH_MS,
        chart_views=tuple(ALL_SPECS),
    )


# --- sales and stock ---------------------------------------------------------------------------------------------


@router.get("/console/sales", response_class=HTMLResponse)
def sales_page(request: Request, scarce_below: int = SCARCE_BELOW) -> HTMLResponse:
    """Revenue per day and per SKU (charts and tables); stock per SKU, the scarce ones highlighted."""
    threshold = max(0, min(scarce_below, 1_000_000_000))
    return _render(request, "sales", "Sales and stock", lambda: load_sales(_context(request).views, threshold))


# --- dead letters ------------------------------------------------------------------------------------------------


@router.get("/console/dead-letters", response_class=HTMLResponse)
def dead_letters_page(request: Request, topic: str = "", letter: str = "") -> HTMLResponse:
    """Dead letters per DLQ topic; one letter's provenance, headers and bytes, with a retry button."""
    return _render(
        request,
        "dead_letters",
        "Dead letters",
        lambda: load_dead_letters(_context(request).settings, topic, letter),
        deferred=True,
    )


@router.post("/console/dead-letters/{letter_id}/retry", response_class=HTMLResponse)
def retry_dead_letter(request: Request, letter_id: str, confirm: str = "") -> Response:
    """Re-publish one dead letter to its original topic (ops/dlq.retry, as `orderstream dlq retry ID`).

    Without ?confirm=yes it only asks (the page a browser without JavaScript shows); with the script, the button's
    confirmation dialog posts with confirm=yes. Refused from another site (Sec-Fetch-Site), so a page elsewhere cannot
    make a visitor's browser retry letters."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise HTTPException(status_code=403, detail="a retry must come from the console itself")
    context = _context(request)
    if not _authorized(request, context.settings):
        raise HTTPException(
            status_code=401, detail="this console needs the API token", headers={"WWW-Authenticate": "Bearer"}
        )

    def load() -> dict[str, Any]:
        if confirm != "yes":
            return {"confirming": letter_id, **_letter_location(letter_id)}
        return retry_letter(context.settings, letter_id)

    return _render(request, "retried", "Retry a dead letter", load)


def _letter_location(letter_id: str) -> dict[str, Any]:
    return {"back_url": "/console/dead-letters?" + urlencode({"letter": letter_id})}


# --- static files ------------------------------------------------------------------------------------------------


@router.get("/console/static/{name}")
def static_file(name: str) -> FileResponse:
    """The console's own script and styles (revalidated on every use: they change with orderstream) and the vendored
    libraries with their licences (their names carry their versions, so browsers keep them)."""
    if name not in STATIC_FILES:
        raise HTTPException(status_code=404, detail=f"no static file {name!r}")
    media = next((t for suffix, t in STATIC_TYPES.items() if name.endswith(suffix)), "application/octet-stream")
    cache = "no-cache" if name.startswith("console.") else "public, max-age=86400"
    return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": cache})
