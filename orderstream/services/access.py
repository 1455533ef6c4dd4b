"""Who owns which topic: one Kafka principal per service, one for the CLI, and what each may read and write.

Each service writes only its own output topics (its changelogs, the topics it re-keys into, its replies) and the
dead-letter topics of what it reads; it reads only its inputs, its changelogs and those dead-letter topics (a retried
letter comes back to the group that dead-lettered it through them). The projections write nothing but
dead letters. The CLI's principal writes only the command topics and reads everything (replies, tail, status, views'
replays). So a record on orders.events can only come from the order service's principal: `replay topic --force` into
an event topic needs its owner's credentials.
"""

from __future__ import annotations

from orderstream.config import Settings
from orderstream.kafka.acls import Access
from orderstream.topology import (
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_ORDERS,
    INVENTORY_REPLIES,
    INVENTORY_RESERVATIONS,
    INVENTORY_RESULTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    ORDERS_REPLIES,
    PAYMENTS_EVENTS,
    PAYMENTS_LEDGER,
    PAYMENTS_ORDERS,
    PAYMENTS_REQUESTS,
    SHIPPING_COMMANDS,
    SHIPPING_EVENTS,
    SHIPPING_REPLIES,
    dlq_name,
)

CLI = "cli"
COMMAND_TOPICS = (ORDERS_COMMANDS, INVENTORY_COMMANDS, SHIPPING_COMMANDS)


def principal_of(settings: Settings, name: str) -> str:
    """The SCRAM user of a service (or "cli"), named with the topic prefix so environments do not share users."""
    return f"{settings.topic_prefix}orderstream-{name}"


def accesses(settings: Settings) -> dict[str, Access]:
    """Service name (and "cli") -> what its principal may do."""
    from orderstream.runtime.projector import group_id_of
    from orderstream.services import inventory_service as inv
    from orderstream.services import order_service as order
    from orderstream.services import payment_service as pay
    from orderstream.services import shipping_service as ship
    from orderstream.views.registry import ALL_SPECS

    copy = f"{settings.topic_prefix}orderstream.topic-copy."  # `replay topic`'s group and transactional.id

    def service(name: str, reads: tuple[str, ...], outputs: tuple[str, ...], groups: tuple[str, ...]) -> Access:
        letters = tuple(dlq_name(t) for t in reads)  # written when a record fails, read back by `dlq retry`
        return Access(
            principal=principal_of(settings, name),
            reads=tuple(settings.topic(t) for t in (*reads, *letters)),
            writes=tuple(settings.topic(t) for t in (*outputs, *letters)),
            groups=(*groups, copy),  # the owner's credentials can `replay topic --force` into its own topics
            transactional_ids=(*groups, copy),  # a processor's transactional.id is "<group>-<slot>"
        )

    view_topics = tuple(dict.fromkeys(t for spec in ALL_SPECS.values() for t in spec.topics))
    table = {
        "order": service(
            "order", (*order.INPUT_TOPICS, ORDERS_EVENTS), (ORDERS_EVENTS, ORDERS_REPLIES), (order.group_of(settings),)
        ),
        "payment": service(
            "payment",
            (ORDERS_EVENTS, PAYMENTS_REQUESTS, PAYMENTS_ORDERS, PAYMENTS_LEDGER),
            (PAYMENTS_ORDERS, PAYMENTS_REQUESTS, PAYMENTS_LEDGER, PAYMENTS_EVENTS),
            (pay.order_stage_group(settings), pay.customer_stage_group(settings)),
        ),
        "inventory": service(
            "inventory",
            (ORDERS_EVENTS, INVENTORY_RESERVATIONS, INVENTORY_COMMANDS, INVENTORY_ORDERS, INVENTORY_EVENTS),
            (INVENTORY_ORDERS, INVENTORY_RESERVATIONS, INVENTORY_EVENTS, INVENTORY_RESULTS, INVENTORY_REPLIES),
            (inv.order_stage_group(settings), inv.sku_stage_group(settings)),
        ),
        "shipping": service(
            "shipping",
            (*ship.INPUT_TOPICS, SHIPPING_EVENTS),
            (SHIPPING_EVENTS, SHIPPING_REPLIES),
            (ship.group_of(settings),),
        ),
        "projections": service(
            "projections", view_topics, (), tuple(group_id_of(name, settings.topic_prefix) for name in ALL_SPECS)
        ),
    }
    table[CLI] = Access(
        principal=principal_of(settings, CLI),
        writes=tuple(settings.topic(t) for t in COMMAND_TOPICS),
        read_topics_prefixed=settings.topic_prefix,
        groups=tuple(dict.fromkeys(("orderstream", f"{settings.topic_prefix}orderstream."))),
        transactional_ids=(copy,),
        describe_groups=True,
    )
    return table
