"""Send Mail's planning fast paths give exactly what the general paths give: reading the task
data without child elements, and text properties that take a str without a Python validator."""

from __future__ import annotations

from typing import Any

import pytest
from dtsx.engine.model import XmlNode
from dtsx.tasks.base import Task
from dtsx.tasks.send_mail import SendMailProperties, SendMailTask

NS = "{www.microsoft.com/sqlserver/dts/tasks/sendmailtask}"
OTHER = "{urn:other}"


def _node(attrs: dict[str, str], children: list[XmlNode] | None = None) -> XmlNode:
    inner = XmlNode(tag=f"{NS}SendMailTaskData", attrs=attrs, children=children or [])
    return XmlNode(tag="{www.microsoft.com/SqlServer/Dts}ObjectData", children=[inner])


def _general(node: XmlNode) -> dict[str, Any]:
    """The general reader (Task's), plus Send Mail's attachment merge, spelled out."""
    data = Task.properties_from_node.__func__(SendMailTask, node)  # type: ignore[attr-defined]
    inner = node.children[0]
    data.pop("Attachments", None)
    names = [c.get("FileName") or "" for c in inner.findall("Attachments")]
    paths = [p.strip() for p in str(data.get("FileAttachments", "")).split("|") if p.strip()]
    paths += [n for n in names if n.strip()]
    if paths:
        data["FileAttachments"] = "|".join(paths)
    return data


ATTRIBUTE_SETS = [
    {},
    {f"{NS}To": "a@example.com", f"{NS}Subject": "S"},
    {f"{NS}FileAttachments": " a.txt | |b.txt "},
    {f"{NS}FileAttachments": " | "},
    {f"{NS}FileAttachments": ""},
    {
        f"{NS}To": "first",
        f"{OTHER}To": "second",
        "Plain": "p",
    },  # same local name twice: the later wins
    {"{urn:dtsx:extensions}HtmlMessageSource": "<b>x</b>", f"{NS}Priority": "1"},
]


@pytest.mark.parametrize("attrs", ATTRIBUTE_SETS)
def test_childless_task_data_reads_as_the_general_reader_does(attrs: dict[str, str]) -> None:
    node = _node(attrs)
    assert SendMailTask.properties_from_node(node) == _general(node)
    assert list(SendMailTask.properties_from_node(node)) == list(_general(node))


@pytest.mark.parametrize("attrs", ATTRIBUTE_SETS)
def test_task_data_with_children_still_reads_them(attrs: dict[str, str]) -> None:
    children = [
        XmlNode(tag=f"{NS}Attachments", attrs={f"{NS}FileName": "c.txt"}),
        XmlNode(tag=f"{NS}CC", text="cc@example.com"),
    ]
    node = _node(attrs, children)
    got = SendMailTask.properties_from_node(node)
    assert got == _general(node)
    assert "c.txt" in got["FileAttachments"].split("|") and got.get("CC") == "cc@example.com"


def test_missing_or_empty_object_data() -> None:
    assert SendMailTask.properties_from_node(None) == {}
    assert SendMailTask.properties_from_node(XmlNode(tag="ObjectData")) == {}


class _Decimalish:
    def __str__(self) -> str:
        return "1.50"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x", "x"),
        (" padded ", " padded "),
        ("", ""),
        (None, ""),
        (True, "True"),
        (False, "False"),
        (7, "7"),
        (2.5, "2.5"),
        (b"raw", "b'raw'"),  # shown, not decoded, as before
        (_Decimalish(), "1.50"),
        ([1], "[1]"),
    ],
)
def test_text_properties_convert_every_kind_of_value(value: Any, expected: str) -> None:
    props = SendMailProperties.model_validate({"To": value, "SmtpConnection": value})
    assert props.to_line == expected and type(props.to_line) is str
    assert props.smtp_connection == expected
    task = SendMailTask(SendMailProperties())
    task.set_property("Subject", value)
    assert task.props.subject == expected and type(task.props.subject) is str


def test_bad_value_is_a_bad_property_problem_at_file_and_line() -> None:
    from dtsx.engine.errors import PackageValidationError
    from dtsx.engine.loader import load_bytes
    from dtsx.engine.plan import build

    data = f"""<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:ObjectName="P">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property><DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Mail" DTS:ExecutableType="Microsoft.SendMailTask"
      DTS:ObjectName="Mail">
      <DTS:ObjectData><SendMailTask:SendMailTaskData xmlns:SendMailTask="{NS[1:-1]}"
        SendMailTask:To="a@example.com" SendMailTask:Priority="Urgent" /></DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>""".encode()
    with pytest.raises(PackageValidationError) as info:
        build(load_bytes(data, file="bad.dtsx"))
    bad = [p for p in info.value.problems if p.code == "bad-property"]
    assert len(bad) == 1 and 'Priority="Urgent" is not one of' in bad[0].message
    assert (bad[0].file, bad[0].line) == ("bad.dtsx", 5)
