"""Views of a package: secrets masked, the public surface pinned."""

from __future__ import annotations

import pytest

import dtsx.engine.loader as loader
import dtsx.engine.plan as plan
import dtsx.engine.render as render
import dtsx.engine.writer as writer
from dtsx.engine.loader import load_bytes
from dtsx.engine.render import mask_connection_string, show_document


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Data Source=x;User ID=u;Password=hunter2;", "Data Source=x;User ID=u;Password=********;"),
        ("Server=x;PWD = 'a;b''c';Trusted=no", "Server=x;PWD = ********;Trusted=no"),
        ('Password="p;w""d";Data Source=y', "Password=********;Data Source=y"),
        ("ProxyPassword=s3;ServerPassword=s4", "ProxyPassword=********;ServerPassword=********"),
        (
            "SmtpServer=mail;UseWindowsAuthentication=True;",
            "SmtpServer=mail;UseWindowsAuthentication=True;",
        ),
        ("PasswordHint=visible;", "PasswordHint=visible;"),
        (None, None),
    ],
)
def test_mask_connection_string(text: str | None, expected: str | None) -> None:
    assert mask_connection_string(text) == expected


def test_show_document_hides_sensitive_parameters_and_variables() -> None:
    data = b"""<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:ObjectName="S">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:PackageParameters>
    <DTS:PackageParameter DTS:DataType="8" DTS:ObjectName="Key" DTS:Sensitive="True">
      <DTS:Property DTS:DataType="8" DTS:Name="ParameterValue">plain-but-sensitive</DTS:Property>
    </DTS:PackageParameter>
  </DTS:PackageParameters>
  <DTS:Variables>
    <DTS:Variable DTS:Namespace="User" DTS:ObjectName="V">
      <DTS:VariableValue DTS:DataType="8" Sensitive="1">blob</DTS:VariableValue>
    </DTS:Variable>
  </DTS:Variables>
</DTS:Executable>"""
    doc = show_document(load_bytes(data, file="s.dtsx"))
    assert doc["parameters"] == [
        {"name": "Key", "data_type": "String", "value": None, "sensitive": True, "required": False}
    ]
    assert doc["variables"][0]["value"] is None
    assert "plain-but-sensitive" not in repr(doc) and "blob" not in repr(doc)


def test_public_surface_is_pinned() -> None:
    assert set(loader.__all__) == {
        "load",
        "load_bytes",
        "load_configuration_file",
        "load_project",
        "parse_xml",
        "xml_to_node",
        "MAX_PACKAGE_BYTES",
        "SUPPORTED_FORMATS",
        "DTS_NS",
        "SSIS_NS",
    }
    assert set(writer.__all__) == {"write", "write_file", "node_to_xml", "WRITTEN_FORMAT"}
    # Issue 10 item 2: the planner hands its decisions down (Plan.flows, Plan.assignments,
    # build(sets=...)), so their types are public.
    assert set(plan.__all__) == {
        "Plan",
        "build",
        "SUPPORTED_ENUMERATORS",
        "SYSTEM_VARIABLES",
        "ContainerFlow",
        "PropertyAssignment",
        "PropertyTarget",
        "SetValue",
    }
    assert set(render.__all__) == {
        "show_document",
        "show_text",
        "graph_dot",
        "graph_mermaid",
        "mask_connection_string",
        "MASK",
    }
    for module in (loader, writer, plan, render):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
