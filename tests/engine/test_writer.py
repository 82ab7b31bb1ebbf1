"""The writer: every corpus package round-trips through format 8 with an identical model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dtsx.engine.loader import load, load_bytes
from dtsx.engine.model import Package
from dtsx.engine.writer import write, write_file
from lxml import etree

from tests._shared import REPO_ROOT, shared_params
from tests.engine.test_loader import LOADABLE, model_counts, xpath_counts

DTS = "{www.microsoft.com/SqlServer/Dts}"
OLD_FORMAT = [p for p in LOADABLE if p.name.startswith("avgrishin_")][:6]


def _without_version(pkg: Package) -> dict[str, Any]:
    data = pkg.comparable()
    data.pop("format_version")
    return data


@pytest.mark.parametrize("path", shared_params(LOADABLE))
def test_corpus_round_trip(path: Path) -> None:
    original = load(path)
    written = write(original)
    again = load_bytes(written, file="rewritten.dtsx")
    assert again.format_version == 8
    assert _without_version(again) == _without_version(original)
    # The written file is in the 2012+ style and counts the same, checked on the raw XML.
    root = etree.fromstring(written)
    assert root.get(DTS + "refId") == "Package"
    assert root.find(f"{DTS}Property[@{DTS}Name='PackageFormatVersion']").text == "8"
    assert root.xpath("count(//DTS:Executable[@IDREF])", namespaces={"DTS": DTS[1:-1]}) == 0
    assert xpath_counts(root) == model_counts(original)


@pytest.mark.parametrize("path", shared_params(OLD_FORMAT))
def test_old_format_written_twice_is_byte_stable(path: Path) -> None:
    once = write(load(path))
    twice = write(load_bytes(once, file="x"))
    assert once == twice


def test_write_file_and_defaults_omitted(tmp_path: Path) -> None:
    pkg = load(REPO_ROOT / "tests" / "data" / "bad" / "cycle.dtsx")
    target = tmp_path / "out.dtsx"
    write_file(pkg, target)
    text = target.read_text(encoding="utf-8")
    # Success/Constraint/no-max-errors are defaults and are not written, LogicalAnd always is.
    assert (
        "DTS:Value=" not in text and "DTS:EvalOp=" not in text and "DTS:MaxErrorCount" not in text
    )
    assert text.count('DTS:LogicalAnd="True"') == 3
    assert _without_version(load(target)) == _without_version(pkg)


def test_sensitive_values_are_never_written(tmp_path: Path) -> None:
    source = tmp_path / "s.dtsx"
    source.write_text(
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="S">\n'
        '  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n'
        "  <DTS:Variables>\n"
        '    <DTS:Variable DTS:Namespace="User" DTS:ObjectName="Secret">\n'
        '      <DTS:VariableValue DTS:DataType="8" Sensitive="1" '
        'Encrypted="1">SECRETBLOB</DTS:VariableValue>\n'
        "    </DTS:Variable>\n"
        "  </DTS:Variables>\n"
        "</DTS:Executable>",
        encoding="utf-8",
    )
    pkg = load(source)
    assert pkg.variables[0].sensitive_unavailable and pkg.variables[0].value is None
    written = write(pkg)
    assert b"SECRETBLOB" not in written
    assert load_bytes(written, file="x").variables[0].sensitive_unavailable


def test_connection_built_in_code_gets_the_ssis_object_data_shape() -> None:
    from dtsx.engine.model import ConnectionManagerSpec

    pkg = Package(
        ref_id="Package",
        name="Hand",
        connections=[
            ConnectionManagerSpec(
                ref_id="Package.ConnectionManagers[M]",
                name="M",
                creation_name="SMTP",
                type_key="SMTP",
                connection_string="SmtpServer=127.0.0.1;EnableSsl=False;",
            ),
            ConnectionManagerSpec(
                ref_id="Package.ConnectionManagers[F]",
                name="F",
                creation_name="FILE",
                type_key="FILE",
                connection_string="/tmp/body.txt",
                properties={"FileUsageType": "0"},
            ),
        ],
    )
    root = etree.fromstring(write(pkg))
    smtp = root.find(
        f"{DTS}ConnectionManagers/{DTS}ConnectionManager/{DTS}ObjectData/SmtpConnectionManager"
    )
    assert (
        smtp is not None and smtp.get("ConnectionString") == "SmtpServer=127.0.0.1;EnableSsl=False;"
    )
    again = load_bytes(write(pkg), file="x")
    smtp_cm, file_cm = again.connections
    assert (
        smtp_cm.connection_string == "SmtpServer=127.0.0.1;EnableSsl=False;"
        and smtp_cm.type_key == "SMTP"
    )
    assert file_cm.connection_string == "/tmp/body.txt" and file_cm.properties == {
        "FileUsageType": "0"
    }
