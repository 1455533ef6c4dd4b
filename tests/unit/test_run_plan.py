"""What `orderstream run` starts: one process per service, and one per view for `projections` (pure: no process)."""

from __future__ import annotations

from orderstream.cli.run import Planned, plan_processes
from orderstream.services.composition import SERVICES
from orderstream.views.registry import ALL_SPECS


def test_projections_run_one_process_per_view():
    plan = plan_processes(["projections"])
    assert plan == [Planned("projections", (view,)) for view in ALL_SPECS]
    assert plan[0].args == ["projections", "--view", next(iter(ALL_SPECS))]
    assert plan[0].label == f"projection {next(iter(ALL_SPECS))}"


def test_run_all_plans_every_service_and_every_view():
    plan = plan_processes(list(SERVICES))
    assert [p.label for p in plan if not p.views] == [f"service {name}" for name in SERVICES if name != "projections"]
    assert [p.views for p in plan if p.views] == [(view,) for view in ALL_SPECS]
    assert len({p.label for p in plan}) == len(plan)  # the supervisor names each child by its label


def test_named_views_run_together_in_one_process():
    plan = plan_processes(["projections"], ("order-view", "sales-view"))
    assert plan == [Planned("projections", ("order-view", "sales-view"))]
    assert plan[0].args == ["projections", "--view", "order-view", "--view", "sales-view"]
    assert plan[0].label == "projections order-view, sales-view"
    assert plan_processes(["order"]) == [Planned("order")] and Planned("order").args == ["order"]
