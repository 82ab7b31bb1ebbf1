"""The Send Mail task: reading ObjectData, property names, validation, body sources, and a dry
run of every Send Mail task in the shared corpus."""

from __future__ import annotations

import codecs
import email
from email import policy
from pathlib import Path
from typing import Any

import pytest
from dtsx.connections.base import ConnectionSettings
from dtsx.connections.file import FileConnectionManager
from dtsx.connections.collection import Connections
from dtsx.engine.errors import TaskFailedError
from dtsx.engine.files import NotARegularFile
from dtsx.engine.model import ConnectionManagerSpec, Package, XmlNode
from dtsx.tasks.base import TASKS, ValidationContext
from dtsx.tasks.send_mail import (
    MailPriority,
    MessageSourceType,
    SendMailTask,
    decode_text_file,
)

from tests._shared import require_shared
from tests.tasks._taskkit import PathConnections, make_ctx

NS = "{www.microsoft.com/sqlserver/dts/tasks/sendmailtask}"
EXT = "{urn:dtsx:extensions}"
SMTP_ID = "{2147ED50-34AE-4AC9-A5BF-A6751C140F92}"


def _node(attrs: dict[str, str], attachments: list[str] = ()) -> XmlNode:  # type: ignore[assignment]
    children = [XmlNode(tag=f"{NS}Attachments", attrs={f"{NS}FileName": a}) for a in attachments]
    inner = XmlNode(
        tag=f"{NS}SendMailTaskData",
        attrs={(k if k.startswith("{") else NS + k): v for k, v in attrs.items()},
        children=children,
    )
    return XmlNode(tag="{www.microsoft.com/SqlServer/Dts}ObjectData", children=[inner])


def _task(**attrs: str) -> SendMailTask:
    base = {
        "SMTPServer": SMTP_ID,
        "From": "etl@example.org",
        "To": "ops@example.com",
        "Subject": "Hi",
    }
    base.update(attrs)
    return SendMailTask.from_node(_node(base))


def _file_connections(files: dict[str, Path]) -> Connections:
    specs = [
        ConnectionManagerSpec(
            ref_id=f"Package.ConnectionManagers[{name}]",
            name=name,
            creation_name="FILE",
            type_key="FILE",
            connection_string=str(path),
        )
        for name, path in files.items()
    ]
    return Connections(specs)


def _vctx(
    types: dict[str, str] | None = None,
    variables: set[str] = frozenset(),
    dynamic: set[str] = frozenset(),
) -> ValidationContext:  # type: ignore[assignment]
    known = {k.lower(): v for k, v in (types or {SMTP_ID: "SMTP"}).items()}
    return ValidationContext(
        connection_type=lambda ref: known.get(ref.lower()),
        has_variable=lambda name: name in variables,
        dynamic_properties=frozenset(n.lower() for n in dynamic),
    )


# ---- reading and property names -------------------------------------------------------------


def test_registered_under_every_ssis_type_name() -> None:
    for name in (
        "Microsoft.SendMailTask",
        (
            "Microsoft.SqlServer.Dts.Tasks.SendMailTask.SendMailTask, "
            "Microsoft.SqlServer.SendMailTask, "
            "Version=10.0.0.0, Culture=neutral, PublicKeyToken=89845dcd8080cc91"
        ),
    ):
        assert TASKS.get(name) is SendMailTask


def test_reads_v3_attributes_and_attachment_children() -> None:
    task = SendMailTask.from_node(
        _node(
            {
                "SMTPServer": SMTP_ID,
                "From": "a@x.org",
                "To": "",
                "CC": "c@x.org",
                "BCC": "",
                "Subject": "Тема",
                "Priority": "High",
                "MessageSourceType": "Variable",
                "MessageSource": "User::Body",
                "FileAttachments": r"C:\a.txt|",
            },
            attachments=[r"c:\tmp\io20111111.xls"],
        )
    )
    p = task.props
    assert (p.smtp_connection, p.from_line, p.cc_line, p.subject) == (
        SMTP_ID,
        "a@x.org",
        "c@x.org",
        "Тема",
    )
    assert p.priority is MailPriority.HIGH and p.message_source_type is MessageSourceType.VARIABLE
    assert p.file_attachments == r"C:\a.txt|c:\tmp\io20111111.xls"


def test_empty_object_data_gives_defaults() -> None:
    task = SendMailTask.from_node(XmlNode(tag="{www.microsoft.com/SqlServer/Dts}ObjectData"))
    assert task.props.priority is MailPriority.NORMAL
    assert task.props.message_source_type is MessageSourceType.DIRECT_INPUT
    assert task.props.to_line == ""


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("ToLine", "x@y.org", "to_line", "x@y.org"),
        ("FromLine", "f@y.org", "from_line", "f@y.org"),
        ("CCLine", "c@y.org", "cc_line", "c@y.org"),
        ("BCCLine", "b@y.org", "bcc_line", "b@y.org"),
        ("SmtpConnection", "SMTP 2", "smtp_connection", "SMTP 2"),
        ("FileAttachments", "a|b", "file_attachments", "a|b"),
        ("HtmlMessageSource", "<p>x</p>", "html_message_source", "<p>x</p>"),
        ("Priority", 1, "priority", MailPriority.HIGH),
        ("Priority", "5", "priority", MailPriority.LOW),
        ("priority", "normal", "priority", MailPriority.NORMAL),
        ("MessageSourceType", 2, "message_source_type", MessageSourceType.VARIABLE),
        (
            "MessageSourceType",
            "fileconnection",
            "message_source_type",
            MessageSourceType.FILE_CONNECTION,
        ),
        ("Subject", 42, "subject", "42"),
        ("MessageSource", None, "message_source", ""),
    ],
)
def test_runtime_property_names(name: str, value: Any, field: str, expected: Any) -> None:
    task = _task()
    task.set_property(name, value)
    assert getattr(task.props, field) == expected


@pytest.mark.parametrize(
    ("name", "value"), [("Priority", 2), ("Priority", "Urgent"), ("MessageSourceType", 7)]
)
def test_bad_enum_values_fail_naming_the_property(name: str, value: Any) -> None:
    with pytest.raises(TaskFailedError, match=name):
        _task().set_property(name, value)


def test_html_extension_attribute_is_read() -> None:
    task = _task(**{f"{EXT}HtmlMessageSource": "<b>hi</b>"})
    assert task.props.html_message_source == "<b>hi</b>"


# ---- validation ------------------------------------------------------------------------------


def test_validation_accepts_a_complete_task() -> None:
    assert _task().validate(_vctx()) == []


def test_validation_problems() -> None:
    task = SendMailTask.from_node(_node({"SMTPServer": "{00000000-0000-0000-0000-000000000001}"}))
    problems = task.validate(_vctx())
    assert len(problems) == 3
    assert (
        "SMTPServer {00000000-0000-0000-0000-000000000001} matches no connection manager"
        in problems[0]
    )
    assert "no sender" in problems[1] and "no recipient" in problems[2]


def test_validation_skips_what_expressions_set() -> None:
    task = SendMailTask.from_node(_node({}))
    assert task.validate(_vctx(dynamic={"SmtpConnection", "FromLine", "ToLine"})) == []


def test_validation_wrong_connection_types() -> None:
    task = _task(MessageSourceType="FileConnection", MessageSource="Body")
    problems = task.validate(_vctx({SMTP_ID: "OLEDB", "Body": "SMTP"}))
    assert "names a OLEDB connection manager, not an SMTP one" in problems[0]
    assert "'Body' is a SMTP connection manager, not a FILE one" in problems[1]


def test_validation_variable_source() -> None:
    task = _task(MessageSourceType="Variable", MessageSource="User::Body")
    assert task.validate(_vctx(variables={"User::Body"})) == []
    assert "not in scope" in task.validate(_vctx())[0]


# ---- body sources and attachments ---------------------------------------------------------


def _parse(msg: Any) -> Any:
    return email.message_from_bytes(msg.as_bytes(), policy=policy.default)


def test_body_from_variable() -> None:
    task = _task(MessageSourceType="Variable", MessageSource="User::Body")
    msg, _, _ = task.build_message(make_ctx({"User::Body": "Строк: 42"}))
    assert _parse(msg).get_content().strip() == "Строк: 42"
    with pytest.raises(TaskFailedError, match="User::Missing"):
        _task(MessageSourceType="Variable", MessageSource="User::Missing").build_message(make_ctx())


@pytest.mark.parametrize(
    ("raw", "text", "warned"),
    [
        (codecs.BOM_UTF8 + "Тело письма".encode(), "Тело письма", False),
        ("Тело письма".encode(), "Тело письма", False),
        ("Тело письма".encode("utf-16"), "Тело письма", False),
        ("café".encode("cp1252"), "café", True),
    ],
)
def test_body_from_file_connection(tmp_path: Path, raw: bytes, text: str, warned: bool) -> None:
    body = tmp_path / "body.txt"
    body.write_bytes(raw)
    ctx = make_ctx(connections=_file_connections({"BodyFile": body}))
    task = _task(MessageSourceType="FileConnection", MessageSource="BodyFile")
    msg, _, _ = task.build_message(ctx)
    assert _parse(msg).get_content().strip() == text
    assert bool(ctx.events.warnings) is warned  # type: ignore[attr-defined]


def test_file_connection_failures(tmp_path: Path) -> None:
    ctx = make_ctx(connections=_file_connections({"BodyFile": tmp_path / "absent.txt"}))
    with pytest.raises(TaskFailedError, match="BodyFile"):
        _task(MessageSourceType="FileConnection", MessageSource="BodyFile").build_message(ctx)
    with pytest.raises(TaskFailedError, match="Nope"):
        _task(MessageSourceType="FileConnection", MessageSource="Nope").build_message(ctx)


def test_attachments_through_local_path(tmp_path: Path) -> None:
    (tmp_path / "Out").mkdir()
    (tmp_path / "Out" / "r.csv").write_bytes(b"a,b\r\n")
    (tmp_path / "x.bin").write_bytes(b"\x00\x01")
    mapping = {r"D:\SSIS\Out\r.csv": str(tmp_path / "Out" / "r.csv")}
    ctx = make_ctx(local_path=lambda p: mapping.get(p, p))
    task = _task(FileAttachments=rf"D:\SSIS\Out\r.csv|{tmp_path / 'x.bin'}")
    msg, _, _ = task.build_message(ctx)
    parts = {p.get_filename(): p.get_payload(decode=True) for p in _parse(msg).iter_attachments()}
    assert parts == {"r.csv": b"a,b\r\n", "x.bin": b"\x00\x01"}


def test_an_smtp_server_that_hands_out_no_mail_session_fails_naming_it(tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_text("hi")
    manager = FileConnectionManager(ConnectionSettings("Not mail", "FILE", str(body)))
    ctx = make_ctx(connections=PathConnections({SMTP_ID: manager}))
    with pytest.raises(TaskFailedError, match="SMTPServer .* is not an SMTP connection manager"):
        _task().execute(ctx)


def test_an_attachment_that_is_a_folder_keeps_the_cause(tmp_path: Path) -> None:
    with pytest.raises(TaskFailedError, match="is a directory, not a regular file") as info:
        _task(FileAttachments=str(tmp_path)).build_message(make_ctx())
    assert isinstance(info.value.__cause__, NotARegularFile)  # kept for --debug


def test_missing_attachment_names_path_and_path_map(tmp_path: Path) -> None:
    task = SendMailTask.from_node(
        _node(
            {"SMTPServer": SMTP_ID, "From": "a@x.org", "To": "b@x.org"},
            attachments=[r"D:\SSIS Tasks\AllOutput\grammar.pdf"],
        )
    )
    with pytest.raises(TaskFailedError) as info:
        task.build_message(make_ctx())
    text = str(info.value)
    assert r"D:\SSIS Tasks\AllOutput\grammar.pdf" in text and "--path-map" in text
    with pytest.raises(TaskFailedError) as info:
        _task(FileAttachments=str(tmp_path / "gone.txt")).build_message(make_ctx())
    assert "gone.txt does not exist" in str(info.value) and "--path-map" not in str(info.value)


def test_execute_refuses_missing_or_foreign_connection(tmp_path: Path) -> None:
    conns = _file_connections({"BodyFile": tmp_path / "b.txt"})
    with pytest.raises(TaskFailedError, match="matches no connection manager"):
        _task().execute(make_ctx(connections=conns))
    with pytest.raises(TaskFailedError, match="not an SMTP one"):
        _task(SMTPServer="BodyFile").execute(make_ctx(connections=conns))
    with pytest.raises(TaskFailedError, match="no SMTP connection manager"):
        _task(SMTPServer="").execute(make_ctx(connections=conns))


def test_decode_text_file_never_raises() -> None:
    assert decode_text_file(bytes(range(256)), "f") != ""


# ---- every Send Mail task in the corpus, dry run -----------------------------------------

_CORPUS_FILES = [
    "alimakri_CoursSSIS_CoursSSIS_Projet4_Package.dtsx",
    "atorres16_SSIS-read-error-console-app-mail_SSIS_Package.dtsx",
    "avgrishin_Dts2008_CheckBourseList.dtsx",
    "avgrishin_Dts2008_CmpPIFAcc2.dtsx",
    "avgrishin_Dts2008_FondShares.dtsx",
    "avgrishin_Dts2008_InobservanceOfDemand.dtsx",
    "avgrishin_Dts2008_ListBondsWoISIN.dtsx",
    "avgrishin_Dts2008_LoadBaseSCHA.dtsx",
    "avgrishin_Dts2008_LoadCBondsDB.dtsx",
    "avgrishin_Dts2008_LoadCFI.dtsx",
    "avgrishin_Dts2008_LoadExIndexMICEX.dtsx",
    "avgrishin_Dts2008_RepNonStdDeals.dtsx",
    "avgrishin_Dts2008_RepOrders3a.dtsx",
    "avgrishin_Dts2008_SetEntAttrBrok.dtsx",
    "larryloi_ssis_utils_dtsx_ssis_utils_etl_delay_alert.dtsx",
    "lucmilot_SSIS_2014_Book_850879_c03_download_Chapter3_SendMailTask.dtsx",
    "lucmilot_SSIS_2014_Book_850879_c16_download_Ch16_ProSSIS_Code_ProSSIS_Ch16_02_Parallel_Tasks.dtsx",
    "lucmilot_SSIS_2014_Book_850879_c18_download_ch18_download_Code_Ch18_ProSSIS_01PrecedenceConstraints.dtsx",
    "lucmilot_SSIS_2014_Book_850879_c18_download_ch18_download_Code_Ch18_ProSSIS_04MultipleConstraints.dtsx",
    "maabcodingschool_Qamarbek_SSIS_TechBrothersIT_71-90_Qamar_Part81_Create_Load_Summary_Email_TR_.dtsx",
    "maabcodingschool_Qamarbek_SSIS_TechBrothersIT_71-90_Qamar_Part82_Configure_Send_Mail_Task..._.dtsx",
    "maabcodingschool_Qamarbek_SSIS_TechBrothersIT_71-90_Qamar_Part84_Attach_Multiple_File_Dynamically_Send_Mail_.dtsx",
    "maabcodingschool_Qamarbek_SSIS_TechBrothersIT_71-90_Qamar_Part85_Send_Error_Email_w_Error_Code_.dtsx",
]
_ENCRYPTED = {
    "avgrishin_Dts2008_LoadParticipantMICEX.dtsx",
    "rtumaykin_ssis-build_example_SampleSSISProjectSQL2016_SampleSSISProject_Package_221.dtsx",
}


def _default(data_type: int, raw: str | None) -> Any:
    """A type-appropriate value for a package variable (its stored value when it parses)."""
    text = raw or ""
    try:
        if data_type in (2, 3, 16, 17, 19, 20, 21):
            return int(text or 0)
        if data_type in (4, 5, 6, 14):
            return float(text or 0)
    except ValueError:
        return 0
    if data_type == 11:
        return text.strip().lower() in ("true", "-1", "1")
    return text


def _dry_run_context(pkg: Package, tmp_path: Path) -> Any:
    overrides = {}
    for spec in pkg.all_connections():
        if spec.type_key in ("FILE", "FLATFILE"):
            stand_in = tmp_path / f"{abs(hash(spec.name))}.txt"
            stand_in.write_text(f"body of {spec.name}\n", encoding="utf-8")
            overrides[spec.name] = str(stand_in)
    conns = Connections(pkg.all_connections(), overrides=overrides)
    values = {}
    for ex in pkg.walk():
        for var in ex.variables:
            values.setdefault(var.qualified_name, _default(var.data_type, var.value))
    return make_ctx(values, connections=conns)


def _corpus_tasks(name: str, tmp_path: Path) -> tuple[list[Any], Any]:
    from dtsx.engine.loader import load

    path = require_shared("corpus", "dtsx", name)
    project = path.parent.parent / "project" if name.startswith("larryloi") else None
    pkg = load(path, project_dir=project)
    tasks = [ex for ex in pkg.walk() if ex.type_key == "Microsoft.SendMailTask"]
    return tasks, _dry_run_context(pkg, tmp_path)


def test_corpus_list_is_complete() -> None:
    folder = require_shared("corpus", "dtsx")
    with_send_mail = set()
    for path in folder.glob("*.dtsx"):
        if path.name not in _ENCRYPTED and b"SendMailTask" in path.read_bytes():
            with_send_mail.add(path.name)
    assert with_send_mail == set(_CORPUS_FILES)


@pytest.mark.parametrize("name", _CORPUS_FILES)
def test_corpus_send_mail_dry_run(name: str, tmp_path: Path) -> None:
    tasks, ctx = _corpus_tasks(name, tmp_path)
    assert tasks, "the corpus file should hold a Send Mail task"
    for ex in tasks:
        task = SendMailTask.from_node(ex.object_data)
        try:
            msg, sender, rcpts = task.build_message(ctx)
        except TaskFailedError as exc:
            assert str(exc).endswith("."), str(exc)
            continue
        parsed = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
        assert parsed["From"].addresses[0].addr_spec == sender
        assert rcpts and all("@" in r for r in rcpts)
        assert parsed["Bcc"] is None


def _only(name: str, tmp_path: Path, index: int = 0) -> tuple[SendMailTask, Any]:
    tasks, ctx = _corpus_tasks(name, tmp_path)
    return SendMailTask.from_node(tasks[index].object_data), ctx


def test_corpus_atorres16_high_priority(tmp_path: Path) -> None:
    task, ctx = _only("atorres16_SSIS-read-error-console-app-mail_SSIS_Package.dtsx", tmp_path)
    msg, sender, rcpts = task.build_message(ctx)
    assert (sender, rcpts) == ("user@email.com", ["anotheruser@email.com"])
    assert msg["X-Priority"] == "1" and msg["Importance"] == "high"
    assert _parse(msg).get_content().replace("\r\n", "\n") == "Return Code:0\nError:\nOutput:\n"


def test_corpus_avgrishin_cyrillic_subject_and_cc_only(tmp_path: Path) -> None:
    task, ctx = _only("avgrishin_Dts2008_ListBondsWoISIN.dtsx", tmp_path)
    msg, _, rcpts = task.build_message(ctx)
    assert _parse(msg)["Subject"] == "Ошибка в ListLoadWoISIN"
    assert rcpts == ["GrishinAV@am-uralsib.ru"] and msg["To"] is None


def test_corpus_larryloi_variable_body(tmp_path: Path) -> None:
    tasks, ctx = _corpus_tasks("larryloi_ssis_utils_dtsx_ssis_utils_etl_delay_alert.dtsx", tmp_path)
    task = SendMailTask.from_node(tasks[1].object_data)
    assert task.props.message_source_type is MessageSourceType.VARIABLE
    ctx.variables.set("User::emailbody_resolved", "ETL delay resolved at 05:00")
    msg, _, _ = task.build_message(ctx)
    assert _parse(msg).get_content().strip() == "ETL delay resolved at 05:00"


def test_corpus_part82_windows_attachment_needs_path_map(tmp_path: Path) -> None:
    task, ctx = _only(
        "maabcodingschool_Qamarbek_SSIS_TechBrothersIT_71-90_Qamar_Part82_Configure_Send_Mail_Task..._.dtsx",
        tmp_path,
    )
    with pytest.raises(
        TaskFailedError, match=r"essential grammar in use 3rd edition\.pdf.*--path-map"
    ):
        task.build_message(ctx)
    local = tmp_path / "Video80"
    local.mkdir()
    (local / "essential grammar in use 3rd edition.pdf").write_bytes(b"%PDF-1.4 test")
    ctx.local_path = lambda p: p.replace("D:\\SSIS Tasks\\AllOutput\\Video80", str(local)).replace(
        "\\", "/"
    )
    msg, _, _ = task.build_message(ctx)
    (part,) = list(_parse(msg).iter_attachments())
    assert part.get_filename() == "essential grammar in use 3rd edition.pdf"
    assert part.get_content_type() == "application/pdf"


def test_corpus_unconfigured_tasks_fail_validation(tmp_path: Path) -> None:
    for name in (
        "alimakri_CoursSSIS_CoursSSIS_Projet4_Package.dtsx",
        "maabcodingschool_Qamarbek_SSIS_TechBrothersIT_71-90_Qamar_Part81_Create_Load_Summary_Email_TR_.dtsx",
    ):
        task, ctx = _only(name, tmp_path)
        problems = task.validate(_vctx(dynamic={"MessageSource"}))
        assert any("no SMTP connection manager" in p for p in problems), problems
        with pytest.raises(TaskFailedError, match="no sender"):
            task.build_message(ctx)
