"""What the orders, order and sales pages show, read through the views' own queries (each view module's): the same
functions GET /orders, GET /orders/{id}, GET /sales and GET /stock call. Every loader returns the template's values;
a view that cannot answer (no database yet, built by another schema version) becomes a `problem` line on the page
rather than an error page, so the rest of the page still shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from orderstream.domain.money import decimals_of
from orderstream.views.base import STATUSES, QueryError, utc_text
from orderstream.views.order_view import ORDER_SORTS, OrderCursor, OrderSelection, order_detail, page_orders
from orderstream.views.sales_view import sales, status_counts
from orderstream.views.stock_view import stock_levels
from orderstream.views.store import StoreError

PAGE_SIZES = (25, 50, 100, 200)
SORT_LABELS = {
    "placed_at": "placed",
    "updated_at": "last change",
    "total_minor": "total",
    "order_id": "order id",
    "customer_id": "customer",
    "status": "status",
}
CHARTED_SKUS = 15  # the revenue-per-SKU chart shows the top 15 SKUs
TABLED_SKUS = 100  # its table the top 100 (GET /sales?by=sku has them all)
CANCELLABLE = frozenset({"PLACED", "CONFIRMED"})
SHIPPABLE = frozenset({"CONFIRMED"})
DELIVERABLE = frozenset({"SHIPPED"})


def parse_since(text: str) -> datetime | None:
    """A datetime-local field's value ('2026-12-06T13:05', read as UTC) or an RFC 3339 time; '' -> None."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"'since' {text!r} is not a time like 2026-12-06T13:05 (UTC)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def load_orders(
    views, *, status: str, customer: str, since: str, sort: str, asc: bool, limit: int, cursor: str
) -> dict[str, Any]:
    filters = {"status": status, "customer": customer, "since": since, "sort": sort, "asc": asc, "limit": limit}
    values: dict[str, Any] = {
        "filters": filters,
        "sorts": SORT_LABELS,
        "page_sizes": PAGE_SIZES,
        "orders": [],
        "counts": [],
        "next_url": None,
        "first_url": None,
        "problem": None,
        "counts_problem": None,
    }
    try:
        counts = status_counts(views.get("sales-view"))
        values["counts"] = [(s, next((c["orders"] for c in counts if c["status"] == s), 0)) for s in STATUSES]
        values["total"] = sum(c["orders"] for c in counts)
    except StoreError as exc:
        values["counts_problem"] = str(exc)
    try:
        if status and status.upper() not in STATUSES:
            raise QueryError(f"no status {status!r}; choose from: {', '.join(STATUSES)}")
        if sort not in ORDER_SORTS:
            raise QueryError(f"cannot sort by {sort!r}; choose from: {', '.join(ORDER_SORTS)}")
        if limit not in PAGE_SIZES:
            raise QueryError(f"a page holds {', '.join(map(str, PAGE_SIZES))} orders, not {limit}")
        moment = parse_since(since)
        selection = OrderSelection(
            customer_id=customer.strip() or None,
            status=status.upper() or None,
            since=utc_text(moment) if moment is not None else None,
            sort=sort,
            descending=not asc,
        )
        after = OrderCursor.decode(cursor) if cursor else None
        rows, following = page_orders(views.get("order-view"), selection, limit, after)
    except (QueryError, StoreError) as exc:  # InvalidCursor is a QueryError
        values["problem"] = str(exc)
        return values
    values["orders"] = rows
    query = {k: v for k, v in filters.items() if v not in ("", False)}
    if following is not None:
        values["next_url"] = "/?" + urlencode({**query, "cursor": following.encode()})
    if cursor:
        values["first_url"] = "/?" + urlencode(query)
    return values


def load_order(views, order_id: str) -> dict[str, Any]:
    try:
        order = order_detail(views.get("order-view"), order_id)
    except StoreError as exc:
        return {"order": None, "order_id": order_id, "problem": str(exc)}
    if order is None:
        return {"order": None, "order_id": order_id, "problem": None}
    status = order["status"]
    for line in order["lines"]:
        line["total_minor"] = line["quantity"] * line["unit_price_minor"]
    return {
        "order": order,
        "order_id": order_id,
        "problem": None,
        "units": sum(line["quantity"] for line in order["lines"]),
        "shipment": shipment_state(order["timeline"], status),
        "can_cancel": status in CANCELLABLE,
        "can_ship": status in SHIPPABLE,
        "can_deliver": status in DELIVERABLE,
    }


def shipment_state(timeline: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """Where the parcel is, from the order's own timeline (OrderShipped, OrderDelivered)."""
    at = {entry["type"]: entry["occurred_at"] for entry in timeline}
    if "OrderDelivered" in at:
        return {"state": "delivered", "shipped_at": at.get("OrderShipped"), "delivered_at": at["OrderDelivered"]}
    if "OrderShipped" in at:
        return {"state": "shipped, on its way", "shipped_at": at["OrderShipped"], "delivered_at": None}
    if status in ("CANCELLED", "REJECTED"):
        return {"state": "none (order closed)", "shipped_at": None, "delivered_at": None}
    if status == "CONFIRMED":
        return {"state": "ready to ship", "shipped_at": None, "delivered_at": None}
    return {"state": "waiting for confirmation", "shipped_at": None, "delivered_at": None}


def load_sales(views, scarce_below: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "by_day": [],
        "by_sku": [],
        "sku_count": 0,
        "stock": [],
        "scarce_below": scarce_below,
        "sales_problem": None,
        "stock_problem": None,
    }
    try:
        model = views.get("sales-view")
        values["by_day"] = sales(model, by="day")
        by_sku = sorted(sales(model, by="sku"), key=lambda r: (-r["revenue_minor"], r["currency"], r["sku"]))
        values["sku_count"] = len(by_sku)
        values["by_sku"] = by_sku[:TABLED_SKUS]
    except StoreError as exc:
        values["sales_problem"] = str(exc)
    try:
        rows = stock_levels(views.get("stock-view"))
    except StoreError as exc:
        values["stock_problem"] = str(exc)
    else:
        values["stock"] = [{**row, "scarce": row["available"] < scarce_below} for row in rows]
        values["scarce_count"] = sum(1 for row in values["stock"] if row["scarce"])
    currencies = {row["currency"] for row in values["by_day"] + values["by_sku"]}
    values["chart_data"] = {
        "by_day": values["by_day"],
        "by_sku": values["by_sku"][:CHARTED_SKUS],  # the top SKUs by revenue
        "decimals": {currency: decimals_of(currency) for currency in currencies},
    }
    return values
