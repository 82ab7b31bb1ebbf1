"""The run's Connections collection: lookup, the order settings are applied in, and secrets."""

from __future__ import annotations

import dataclasses

import pytest

from dtsx.connections.base import ConnectionManager, ConnectionSettings
from dtsx.connections.collection import Connections
from dtsx.engine.errors import ConnectionManagerError
from dtsx.engine.model import ConnectionManagerSpec, PropertyExpression
from dtsx.engine.registry import Registry


class Echo(ConnectionManager):
    """A manager whose connection is its own settings, so a test can see what it was built from."""

    def acquire(self) -> object:
        return self.settings


REGISTRY: Registry[type[ConnectionManager]] = Registry("connection manager", "tests.none")
REGISTRY.add("ECHO", Echo, "tests")
GUID = "{6B1E1D84-20A6-4C8B-9C07-3F8F7C8A0301}"


def spec(**fields: object) -> ConnectionManagerSpec:
    base: dict[str, object] = dict(
        ref_id="Package.ConnectionManagers[Mail]",
        name="Mail",
        dtsid=GUID,
        creation_name="ECHO",
        type_key="ECHO",
        connection_string="Server=stored;",
    )
    return ConnectionManagerSpec(**{**base, **fields})  # type: ignore[arg-type]


def to_sink(settings: ConnectionSettings) -> ConnectionSettings:
    return dataclasses.replace(settings, connection_string="Server=sink;", properties={})


@pytest.mark.parametrize(
    "ref",
    [
        GUID,
        GUID.lower().strip("{}"),
        "Mail",
        "Package.ConnectionManagers[Mail]",
        f"{GUID}:external",
    ],
)
def test_a_reference_finds_its_manager_in_every_form(ref: str) -> None:
    assert Connections([spec()], registry=REGISTRY).find(ref) is not None


def test_expressions_then_conn_override_then_redirect() -> None:
    item = spec(property_expressions=[PropertyExpression(name="SmtpServer", expression="@x")])
    hook = lambda s: {"SmtpServer": "from-expression"}  # noqa: E731
    plain = Connections([item], expressions=hook, registry=REGISTRY).acquire("Mail")
    assert (
        plain.connection_string == "Server=stored;"
        and plain.properties["SmtpServer"] == "from-expression"
    )
    overridden = Connections(
        [item], expressions=hook, overrides={"mail": "Server=conn;"}, registry=REGISTRY
    ).acquire("Mail")
    assert (
        overridden.connection_string == "Server=conn;"
        and overridden.properties["SmtpServer"] == "from-expression"
    )
    redirected = Connections(
        [item],
        expressions=hook,
        overrides={"mail": "Server=conn;"},
        redirect=to_sink,
        registry=REGISTRY,
    ).acquire("Mail")
    assert redirected.connection_string == "Server=sink;" and dict(redirected.properties) == {}


def test_unavailable_secrets_refuse_unless_the_connection_is_replaced() -> None:
    secret = spec(sensitive_unavailable=["Password"])
    with pytest.raises(ConnectionManagerError, match=r"'Mail' needs Password.*--conn"):
        Connections([secret], registry=REGISTRY).acquire("Mail")
    assert Connections([secret], overrides={GUID: "Server=conn;"}, registry=REGISTRY).acquire(GUID)
    assert Connections([secret], redirect=to_sink, registry=REGISTRY).acquire("Mail")
    # A redirect that leaves this kind of connection alone does not lift the refusal.
    with pytest.raises(ConnectionManagerError):
        Connections([secret], redirect=lambda s: s, registry=REGISTRY).acquire("Mail")
