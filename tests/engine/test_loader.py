"""The loader against every real package in the shared corpus, counted independently with XPath."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dtsx.engine.errors import PackageLoadError
from dtsx.engine.loader import load
from dtsx.engine.model import ExecutableKind, Package
from lxml import etree

from tests._shared import require_shared, shared_dir, shared_params

NS = {"DTS": "www.microsoft.com/SqlServer/Dts"}
ENCRYPTED = {
    "avgrishin_Dts2008_LoadParticipantMICEX.dtsx",
    "rtumaykin_ssis-build_example_SampleSSISProjectSQL2016_SampleSSISProject_Package_221.dtsx",
}


def _corpus_files() -> list[Path]:
    base = shared_dir()
    if base is None or not (base / "corpus" / "dtsx").is_dir():
        return []
    return sorted((base / "corpus" / "dtsx").glob("*.dtsx"))


CORPUS = _corpus_files()
LOADABLE = [f for f in CORPUS if f.name not in ENCRYPTED]


def _ids(files: list[Path]) -> list[str]:
    return [f.name[:60] for f in files]


def xpath_counts(root: etree._Element) -> dict[str, int]:
    """Counts taken straight from the XML, whatever the persistence style."""
    outside = "[not(ancestor::DTS:ObjectData)]"

    def count(expr: str) -> int:
        return int(root.xpath(f"count({expr})", namespaces=NS))

    return {
        # Real executables: not the root, not the IDREF ends of 2008 constraints.
        "executables": count(f"//DTS:Executable[not(@IDREF)]{outside}") - 1,
        "constraints": count(f"//DTS:PrecedenceConstraint{outside}"),
        "connections": count(
            "/DTS:Executable/DTS:ConnectionManagers/DTS:ConnectionManager | "
            "/DTS:Executable/DTS:ConnectionManager"
        ),
        "variables": count(f"//DTS:Variable{outside}"),
        "event_handlers": count(f"//DTS:EventHandler{outside}"),
    }


def model_counts(pkg: Package) -> dict[str, int]:
    everything = list(pkg.walk())
    return {
        "executables": sum(
            1
            for e in everything
            if e.kind not in (ExecutableKind.PACKAGE, ExecutableKind.EVENT_HANDLER)
        ),
        "constraints": sum(len(e.precedence_constraints) for e in everything),
        "connections": len(pkg.connections),
        "variables": sum(len(e.variables) for e in everything),
        "event_handlers": sum(1 for e in everything if e.kind is ExecutableKind.EVENT_HANDLER),
    }


def test_corpus_is_present_and_has_both_styles() -> None:
    require_shared("corpus", "dtsx")
    versions = set()
    for f in LOADABLE:
        versions.add(load(f).format_version)
    assert versions == {2, 3, 6, 8}


@pytest.mark.parametrize("path", shared_params(LOADABLE))
def test_corpus_package_counts_match_xpath(path: Path) -> None:
    pkg = load(path)
    root = etree.parse(str(path)).getroot()
    assert model_counts(pkg) == xpath_counts(root)


@pytest.mark.parametrize("path", shared_params(LOADABLE))
def test_corpus_refids_and_constraint_ends_resolve(path: Path) -> None:
    pkg = load(path)
    for exe in pkg.walk():
        assert exe.location is not None and exe.location.line is not None
        children = {c.ref_id for c in exe.executables}
        for pc in exe.precedence_constraints:
            # Every corpus constraint links two siblings, in both styles (IDREF GUIDs resolved).
            assert pc.from_ref in children and pc.to_ref in children, pc
        for child in exe.executables:
            assert child.ref_id.startswith(exe.ref_id + "\\")
        for var in exe.variables:
            assert var.scope == exe.ref_id
            assert var.ref_id.endswith(
                f".Variables[{var.namespace}::{var.name}]"
            ) or var.ref_id.startswith(exe.ref_id)


@pytest.mark.parametrize("name", sorted(ENCRYPTED))
def test_fully_encrypted_corpus_packages_are_refused_with_the_level(name: str) -> None:
    path = require_shared("corpus", "dtsx", name)
    with pytest.raises(PackageLoadError) as info:
        load(path)
    message = str(info.value)
    assert "EncryptAllWithPassword" in message and "password" in message
    assert info.value.file == str(path) and info.value.line == 1


def test_whole_corpus_loads_quickly() -> None:
    require_shared("corpus", "dtsx")
    start = time.perf_counter()
    for f in LOADABLE:
        load(f)
    elapsed = time.perf_counter() - start
    print(f"\ncorpus: {len(LOADABLE)} packages loaded in {elapsed:.3f} s")
    assert elapsed < 60  # a hang guard only; the figure is printed, not asserted


def _one(pattern: str) -> Path:
    base = require_shared("corpus", "dtsx")
    found = sorted(base.glob(pattern))
    if not found:
        pytest.skip(f"no corpus file matches {pattern}")
    return found[0]


def test_v3_idref_constraints_or_logic_and_expressions() -> None:
    pkg = load(_one("avgrishin_Dts2008_LoadExIndexMICEX.dtsx"))
    assert pkg.format_version == 3 and pkg.protection_level == 2
    loop = next(e for e in pkg.executables if e.name == "Load Indexes")
    assert loop.kind is ExecutableKind.FOR_LOOP
    assert loop.init_expression == "@d = @db" and loop.eval_expression == "@d <= @de"
    into_drop = [
        pc
        for pc in loop.precedence_constraints
        if pc.to_ref == "Package\\Load Indexes\\Drop temp table"
    ]
    assert {pc.value for pc in into_drop} == {1, 2} and not any(pc.logical_and for pc in into_drop)
    expr = [pc for pc in loop.precedence_constraints if pc.expression]
    assert {pc.expression for pc in expr} == {"@c>0", "@c==0"} and {pc.eval_op for pc in expr} == {
        3
    }
    handler = pkg.event_handlers[0]
    assert handler.kind is ExecutableKind.EVENT_HANDLER and handler.event == "OnError"
    assert handler.ref_id == "Package.EventHandlers[OnError]"
    assert handler.executables[0].ref_id == "Package.EventHandlers[OnError]\\Send Mail Task"
    assert handler.executables[0].type_key == "Microsoft.SendMailTask"


def test_v3_connections_from_properties_and_inline_encryption() -> None:
    pkg = load(_one("avgrishin_Dts2008_LoadExIndexMICEX.dtsx"))
    by_name = {cm.name: cm for cm in pkg.connections}
    smtp = by_name["SMTP Connection Manager"]
    assert (
        smtp.type_key == "SMTP"
        and smtp.ref_id == "Package.ConnectionManagers[SMTP Connection Manager]"
    )
    assert smtp.connection_string.startswith("SmtpServer=m.am-uralsib.ru;")
    assert smtp.dtsid == "{b2a0094f-2ea0-48a1-ab2c-6dc6e5de8024}"
    oledb = by_name["assetsmgr.MiddleOffice.GrishinAV"]
    assert (
        oledb.sensitive_unavailable == ["Password"]
        and "Data Source=assetsmgr" in oledb.connection_string
    )
    flat = by_name["stock_index"]
    assert (
        flat.properties["CodePage"] == "1251"
        and flat.property_expressions[0].name == "ConnectionString"
    )


def test_v6_event_handlers_on_tasks_and_for_loop_attributes() -> None:
    pkg = load(_one("*ProSSIS_07EventBubbling.dtsx"))
    assert pkg.format_version == 6 and pkg.protection_level == 0
    seq = pkg.executables[0]
    loop = next(e for e in seq.executables if e.kind is ExecutableKind.FOR_LOOP)
    assert loop.assign_expression == "@Count = @Count + 1" and loop.max_error_count == 9999
    task = next(e for e in loop.executables if e.event_handlers)
    assert [h.event for h in task.event_handlers] == ["OnError", "OnPreExecute"]
    propagate = task.event_handlers[0].variables[0]
    assert (
        propagate.qualified_name == "System::Propagate"
        and propagate.data_type == 11
        and propagate.value == "0"
    )
    assert task.object_data is not None and task.object_data.local_name == "ObjectData"
    assert task.object_data.children[0].local_name == "SqlTaskData"


def test_v8_foreach_enumerator_mappings_and_send_mail_data() -> None:
    pkg = load(_one("maabcodingschool*Part84*.dtsx"))
    loop = pkg.executables[0]
    assert loop.kind is ExecutableKind.FOREACH_LOOP
    enum = loop.enumerator
    assert enum is not None and enum.type_key == "Microsoft.ForEachFileEnumerator"
    assert enum.properties == {
        "Directory": "D:\\SSIS Tasks\\AllOutput\\Video84\\",
        "FileSpec": "*.*",
        "FileNameRetrievalType": "0",
        "Recurse": "0",
    }
    assert [pe.name for pe in enum.property_expressions] == ["Directory"]
    assert [(m.variable, m.value_index) for m in loop.variable_mappings] == [
        ("User::FileFullPath", 0)
    ]
    mail = next(e for e in pkg.executables if e.type_key == "Microsoft.SendMailTask")
    data = mail.object_data.children[0]
    assert (
        data.local_name == "SendMailTaskData"
        and data.get("SMTPServer") == "{C55E3239-20AD-4AE7-8E08-D42463BC1999}"
    )
    assert {pe.name for pe in mail.property_expressions} >= {
        "ToLine",
        "FromLine",
        "FileAttachments",
    }


def test_multiline_property_expression_kept_exactly() -> None:
    path = _one("maabcodingschool*Part81*.dtsx")
    pkg = load(path)
    raw = etree.parse(str(path)).getroot()
    texts = [e.text for e in raw.iter("{www.microsoft.com/SqlServer/Dts}PropertyExpression")]
    multi = [t for t in texts if t and "\n" in t]
    assert multi, "the corpus file has a multi-line property expression"
    loaded = [pe.expression for exe in pkg.walk() for pe in exe.property_expressions]
    assert set(multi) <= set(loaded)


def test_project_connections_and_parameters_from_project_dir() -> None:
    project = require_shared("corpus", "project")
    pkg = load(_one("larryloi_*.dtsx"), project_dir=project)
    assert [cm.name for cm in pkg.project_connections] == ["SMTP_server"]
    cm = pkg.project_connections[0]
    assert (
        cm.scope == "Project"
        and cm.type_key == "SMTP"
        and cm.ref_id == "Project.ConnectionManagers[SMTP_server]"
    )
    assert cm.dtsid == "{88471E4C-F28E-4330-9CD6-AB7C0CD793CB}"
    assert pkg.project_parameters == []


def test_project_params_typecodes_and_sensitive(tmp_path: Path) -> None:
    (tmp_path / "Project.params").write_text(
        """<?xml version="1.0"?>
<SSIS:Parameters xmlns:SSIS="www.microsoft.com/SqlServer/SSIS">
  <SSIS:Parameter SSIS:Name="Port">
    <SSIS:Properties>
      <SSIS:Property SSIS:Name="ID">{00000000-0000-0000-0000-0000000000AA}</SSIS:Property>
      <SSIS:Property SSIS:Name="Required">1</SSIS:Property>
      <SSIS:Property SSIS:Name="Sensitive">0</SSIS:Property>
      <SSIS:Property SSIS:Name="Value">2525</SSIS:Property>
      <SSIS:Property SSIS:Name="DataType">9</SSIS:Property>
    </SSIS:Properties>
  </SSIS:Parameter>
  <SSIS:Parameter SSIS:Name="Secret">
    <SSIS:Properties>
      <SSIS:Property SSIS:Name="Sensitive">1</SSIS:Property>
      <SSIS:Property SSIS:Name="Value" SSIS:Sensitive="1">AQAAANCMnd8BFdERjHoAwE</SSIS:Property>
      <SSIS:Property SSIS:Name="DataType">18</SSIS:Property>
    </SSIS:Properties>
  </SSIS:Parameter>
</SSIS:Parameters>
""",
        encoding="utf-8",
    )
    pkg_file = tmp_path / "p.dtsx"
    pkg_file.write_text(
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="P">'
        '<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property></DTS:Executable>',
        encoding="utf-8",
    )
    pkg = load(pkg_file)  # project files beside the package are found without --project-dir
    port, secret = pkg.project_parameters
    assert (port.name, port.dotnet_type, port.value, port.required, port.scope) == (
        "Port",
        "Int32",
        "2525",
        True,
        "Project",
    )
    assert secret.sensitive and secret.sensitive_unavailable and secret.value is None
    assert "AQAAANCM" not in repr(pkg.project_parameters)


def test_bom_and_entities_inside_attributes(tmp_path: Path) -> None:
    text = (
        '\ufeff<?xml version="1.0"?>\n'
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="Пакет">\n'
        '  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n'
        "  <DTS:Variables>\n"
        '    <DTS:Variable DTS:Namespace="User" DTS:ObjectName="Body" '
        'DTS:Expression="&quot;a&#xA;b&quot;" DTS:EvaluateAsExpression="True">\n'
        '      <DTS:VariableValue DTS:DataType="8"><![CDATA[x < y]]></DTS:VariableValue>\n'
        "    </DTS:Variable>\n"
        "  </DTS:Variables>\n"
        "</DTS:Executable>\n"
    )
    path = tmp_path / "bom.dtsx"
    path.write_bytes(text.encode("utf-8"))
    pkg = load(path)
    var = pkg.variables[0]
    assert pkg.name == "Пакет" and var.expression == '"a\nb"' and var.value == "x < y"
    assert var.evaluate_as_expression and var.location.line == 5


def test_sensitive_values_load_as_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "sensitive.dtsx"
    path.write_text(
        '<?xml version="1.0"?>\n'
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="S" DTS:ProtectionLevel="0">\n'
        '  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n'
        "  <DTS:ConnectionManagers>\n"
        '    <DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[DB]" '
        'DTS:CreationName="OLEDB" DTS:ObjectName="DB">\n'
        "      <DTS:ObjectData>\n"
        '        <DTS:ConnectionManager DTS:ConnectionString="Data Source=x;User ID=u;">\n'
        '          <DTS:Password DTS:Name="Password" Sensitive="1" '
        'Encrypted="1">AQAAANCMnd8BFdERjHoAwE</DTS:Password>\n'
        "        </DTS:ConnectionManager>\n"
        "      </DTS:ObjectData>\n"
        "    </DTS:ConnectionManager>\n"
        "  </DTS:ConnectionManagers>\n"
        "  <DTS:PackageParameters>\n"
        '    <DTS:PackageParameter DTS:CreationName="" DTS:DataType="8" DTS:ObjectName="Pwd" '
        'DTS:Sensitive="True">\n'
        '      <DTS:Property DTS:DataType="8" DTS:Name="ParameterValue" Sensitive="1" '
        'Encrypted="1">AQAAANCMnd8</DTS:Property>\n'
        "    </DTS:PackageParameter>\n"
        "  </DTS:PackageParameters>\n"
        "</DTS:Executable>\n",
        encoding="utf-8",
    )
    pkg = load(path)
    cm = pkg.connections[0]
    assert cm.connection_string == "Data Source=x;User ID=u;" and cm.sensitive_unavailable == [
        "Password"
    ]
    assert "Password" not in cm.properties
    param = pkg.parameters[0]
    assert param.sensitive and param.sensitive_unavailable and param.value is None
    assert pkg.protection_level == 0


def test_defaults_filled_in_for_omitted_attributes(tmp_path: Path) -> None:
    path = tmp_path / "defaults.dtsx"
    path.write_text(
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="D">\n'
        '  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n'
        "  <DTS:Executables>\n"
        '    <DTS:Executable DTS:refId="Package\\A" DTS:ExecutableType="STOCK:SEQUENCE" '
        'DTS:ObjectName="A" />\n'
        '    <DTS:Executable DTS:refId="Package\\B" DTS:ExecutableType="STOCK:SEQUENCE" '
        'DTS:ObjectName="B" DTS:Disabled="True" />\n'
        "  </DTS:Executables>\n"
        "  <DTS:PrecedenceConstraints>\n"
        '    <DTS:PrecedenceConstraint DTS:refId="Package.PrecedenceConstraints[C]" '
        'DTS:From="Package\\A" DTS:To="Package\\B" DTS:ObjectName="C" />\n'
        "  </DTS:PrecedenceConstraints>\n"
        "</DTS:Executable>\n",
        encoding="utf-8",
    )
    pkg = load(path)
    assert pkg.protection_level == 1 and pkg.max_error_count == 1
    a, b = pkg.executables
    assert (a.disabled, b.disabled, a.kind) == (False, True, ExecutableKind.SEQUENCE)
    pc = pkg.precedence_constraints[0]
    assert (pc.value, pc.eval_op, pc.logical_and, pc.expression) == (0, 2, True, None)
