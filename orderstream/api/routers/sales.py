"""Sales and customers: GET /sales?by=sku|day|day-sku (the sales view), GET /customers/{id} (the customer view)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from orderstream.api.context import Context
from orderstream.api.problems import not_found
from orderstream.views import customer_view, sales_view
from orderstream.views.customer_view import customer_summary
from orderstream.views.models import CustomerTotal, SalesReport, dump
from orderstream.views.sales_view import sales as sales_rows
from orderstream.views.sales_view import status_counts

router = APIRouter(tags=["sales"])


@router.get("/sales", response_model=SalesReport, summary="Booked units and revenue, and orders per status")
async def sales(context: Context, by: Annotated[Literal["sku", "day", "day-sku"], Query()] = "sku") -> dict:
    def read(model) -> dict:
        return {"by": by, "rows": sales_rows(model, by=by), "statuses": status_counts(model)}

    return dump(SalesReport.model_validate(await context.views.read(sales_view.NAME, read)))


@router.get(
    "/customers/{customer_id}",
    response_model=list[CustomerTotal],
    responses={404: {}},
    summary="A customer's orders count and lifetime value, per currency",
)
async def customer(context: Context, customer_id: str) -> list[dict]:
    rows = await context.views.read(customer_view.NAME, customer_summary, customer_id)
    if not rows:
        raise not_found(f"customer {customer_id[:80]!r} not found in customer-view")
    return [dump(CustomerTotal.model_validate(r)) for r in rows]
