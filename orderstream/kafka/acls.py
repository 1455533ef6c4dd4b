"""Kafka ACLs and SCRAM principals from a plain description of who may do what.

An Access says, for one principal (a SCRAM user), which topics it reads and writes, which consumer groups and
transactional ids it uses (as name prefixes); `bindings()` turns it into Kafka ACL bindings, `kafka_acls_commands()`
into the equivalent `kafka-acls.sh` command lines for operators of an existing cluster. With an authorizer on, Kafka
denies whatever no ACL allows, so a principal writes only the topics listed in its `writes`.

Topic names here are full names (with the topic prefix); services/access.py says which principal owns what.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Access:
    """What one principal may do. Guarantee: bindings() grants nothing beyond these lists."""

    principal: str  # the SCRAM user name (Kafka principal "User:<principal>")
    reads: tuple[str, ...] = ()  # topics read (READ, DESCRIBE)
    writes: tuple[str, ...] = ()  # topics written (WRITE, DESCRIBE)
    groups: tuple[str, ...] = ()  # consumer group id prefixes it joins or commits for (READ, DESCRIBE)
    transactional_ids: tuple[str, ...] = ()  # transactional.id prefixes (WRITE, DESCRIBE)
    read_topics_prefixed: str | None = None  # read every topic whose name starts with this ("" = every topic)
    describe_groups: bool = False  # describe every group and its offsets (status)


@dataclass(frozen=True)
class Grant:
    """One ACL: allow principal `operation` on a resource (a literal name or a name prefix), from any host."""

    principal: str
    resource: str  # "topic", "group" or "transactional-id"
    name: str
    prefixed: bool
    operation: str  # "READ", "WRITE" or "DESCRIBE"


def grants(access: Access) -> list[Grant]:
    out: list[Grant] = []

    def allow(resource: str, names, prefixed: bool, *operations: str) -> None:
        for name in dict.fromkeys(names):
            out.extend(Grant(access.principal, resource, name, prefixed, op) for op in operations)

    allow("topic", access.writes, False, "WRITE", "DESCRIBE")
    allow("topic", [t for t in access.reads if t not in access.writes], False, "READ", "DESCRIBE")
    allow("topic", [t for t in access.reads if t in access.writes], False, "READ")
    if access.read_topics_prefixed is not None:
        if access.read_topics_prefixed:
            allow("topic", [access.read_topics_prefixed], True, "READ", "DESCRIBE")
        else:
            allow("topic", ["*"], False, "READ", "DESCRIBE")
    allow("group", access.groups, True, "READ", "DESCRIBE")
    if access.describe_groups:
        allow("group", ["*"], False, "DESCRIBE")
    allow("transactional-id", access.transactional_ids, True, "WRITE", "DESCRIBE")
    return out


def bindings(accesses: list[Access]) -> list[Any]:
    """confluent_kafka AclBindings for every grant of every access."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    types = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "transactional-id": ResourceType.TRANSACTIONAL_ID,
    }
    return [
        AclBinding(
            types[g.resource],
            g.name,
            ResourcePatternType.PREFIXED if g.prefixed else ResourcePatternType.LITERAL,
            f"User:{g.principal}",
            "*",
            AclOperation[g.operation],
            AclPermissionType.ALLOW,
        )
        for access in accesses
        for g in grants(access)
    ]


def kafka_acls_commands(accesses: list[Access], bootstrap: str, command_config: str = "admin.properties") -> list[str]:
    """The same ACLs as `kafka-acls.sh --add` command lines, one per principal and resource."""
    lines = []
    for access in accesses:
        by_resource: dict[tuple[str, str, bool], list[str]] = {}
        for g in grants(access):
            by_resource.setdefault((g.resource, g.name, g.prefixed), []).append(g.operation)
        for (resource, name, prefixed), operations in by_resource.items():
            parts = [
                "kafka-acls.sh",
                "--bootstrap-server",
                bootstrap,
                "--command-config",
                command_config,
                "--add",
                "--allow-principal",
                f"User:{access.principal}",
            ]
            for operation in operations:
                parts += ["--operation", operation.capitalize()]
            parts += [f"--{resource}", name]
            if prefixed:
                parts += ["--resource-pattern-type", "prefixed"]
            lines.append(shlex.join(parts))
    return lines


def create_acls(admin: Any, accesses: list[Access], timeout_s: float = 30.0) -> int:
    """Create every binding (creating an existing ACL again is a no-op in Kafka). Returns how many were asked for."""
    wanted = bindings(accesses)
    for future in admin.create_acls(wanted, request_timeout=timeout_s).values():
        future.result()
    return len(wanted)


def upsert_scram_users(admin: Any, passwords: dict[str, str], mechanism: str, timeout_s: float = 30.0) -> None:
    """Create (or reset) the SCRAM credentials of these users for one mechanism (SCRAM-SHA-256 or -512)."""
    import os

    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    kind = ScramMechanism[mechanism.upper().replace("-", "_")]
    upserts = [
        UserScramCredentialUpsertion(user, ScramCredentialInfo(kind, 8192), password.encode(), os.urandom(16))
        for user, password in passwords.items()
    ]
    for future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s).values():
        future.result()
