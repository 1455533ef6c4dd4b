"""Operations: GET /healthz (the process answers), GET /readyz (the broker answers and every view is within
ready_max_lag events of its topics' end; 503 otherwise), GET /status (as `orderstream status --json`)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from orderstream.api.context import Context
from orderstream.api.problems import Problem
from orderstream.config import Settings

router = APIRouter(tags=["ops"])

BROKER_CHECK_S = 2.0


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _projection_status(settings: Settings, sample_s: float):
    from orderstream.ops.status import collect_status
    from orderstream.services.composition import watched_consumers

    return collect_status(settings, [w for w in watched_consumers(settings) if w.kind == "projection"], sample_s)


def _readiness(settings: Settings) -> dict[str, Any]:
    from orderstream.broker.probe import ClusterUnreachable, check_connection
    from orderstream.kafka.clients import common_config
    from orderstream.ops.status import StatusUnavailable

    try:
        check_connection(common_config(settings), timeout_s=BROKER_CHECK_S)
    except ClusterUnreachable as exc:
        return {"ready": False, "detail": str(exc), "views": {}}
    try:
        report = _projection_status(settings, 0)
    except StatusUnavailable as exc:  # no topics, or the broker could not say how far the views are
        return {"ready": False, "detail": str(exc), "views": {}}
    lags: dict[str, int] = {}
    for row in report.consumers:
        lags[row.name] = lags.get(row.name, 0) + row.lag
    late = {name: lag for name, lag in lags.items() if lag > settings.ready_max_lag}
    detail = (
        "the broker answers and every view is within ready_max_lag"
        if not late
        else ", ".join(f"{name} is {lag} events behind" for name, lag in late.items())
        + f" (ready_max_lag {settings.ready_max_lag})"
    )
    return {"ready": not late, "detail": detail, "views": lags}


@router.get("/readyz", summary="Ready: the broker answers and every view is within ready_max_lag")
async def readyz(context: Context) -> dict[str, Any]:
    answer = await asyncio.to_thread(_readiness, context.settings)
    if not answer["ready"]:
        raise Problem(503, "Service Unavailable", answer["detail"], headers={"Retry-After": "1"}, views=answer["views"])
    return answer


@router.get("/status", summary="Lag, last event age and state of every consumer (as `orderstream status --json`)")
async def status(
    context: Context,
    sample: Annotated[float, Query(gt=0, le=10, description="seconds to watch a consumer that is behind")] = 1.5,
) -> dict[str, Any]:
    from orderstream.broker.probe import ClusterUnreachable, check_connection
    from orderstream.kafka.clients import common_config
    from orderstream.ops.status import StatusUnavailable, collect_status
    from orderstream.services.composition import watched_consumers

    settings = context.settings

    def collect() -> dict[str, Any]:
        check_connection(common_config(settings), timeout_s=BROKER_CHECK_S)
        return collect_status(settings, watched_consumers(settings), sample_s=sample).as_json()

    try:
        return await asyncio.to_thread(collect)
    except ClusterUnreachable as exc:
        raise Problem(503, "Service Unavailable", str(exc), headers={"Retry-After": "1"}) from None
    except StatusUnavailable as exc:  # no topics, or the broker could not answer a question status asks
        raise Problem(503, "Service Unavailable", str(exc), headers={"Retry-After": "1"}) from None
