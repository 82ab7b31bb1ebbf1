"""2005/2008 precedence constraints name their ends by the executables' DTSIDs (``IDREF``). The
loader matches them as every DTSID is matched (references.guid_key): in any case, with or
without braces, so an end written differently from the DTSID still resolves."""

from __future__ import annotations

import pytest
from dtsx.engine.loader import load_bytes


def _old_package(dtsid: str, from_idref: str) -> bytes:
    return (
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" '
        'DTS:ExecutableType="SSIS.Package.2">\n'
        '<DTS:Property DTS:Name="PackageFormatVersion">3</DTS:Property>\n'
        '<DTS:Property DTS:Name="ObjectName">Old</DTS:Property>\n'
        '<DTS:Executable DTS:ExecutableType="STOCK:SEQUENCE">\n'
        '<DTS:Property DTS:Name="ObjectName">A</DTS:Property>\n'
        f'<DTS:Property DTS:Name="DTSID">{dtsid}</DTS:Property>\n'
        "</DTS:Executable>\n"
        '<DTS:Executable DTS:ExecutableType="STOCK:SEQUENCE">\n'
        '<DTS:Property DTS:Name="ObjectName">B</DTS:Property>\n'
        '<DTS:Property DTS:Name="DTSID">{BBBBBBBB-0000-0000-0000-000000000002}</DTS:Property>\n'
        "</DTS:Executable>\n"
        "<DTS:PrecedenceConstraint>\n"
        '<DTS:Property DTS:Name="ObjectName">C</DTS:Property>\n'
        f'<DTS:Executable IDREF="{from_idref}" DTS:IsFrom="-1"/>\n'
        '<DTS:Executable IDREF="{bbbbbbbb-0000-0000-0000-000000000002}" DTS:IsFrom="0"/>\n'
        "</DTS:PrecedenceConstraint>\n"
        "</DTS:Executable>"
    ).encode()


@pytest.mark.parametrize(
    ("dtsid", "idref"),
    [
        ("{AAAAAAAA-0000-0000-0000-000000000001}", "{aaaaaaaa-0000-0000-0000-000000000001}"),
        ("{AAAAAAAA-0000-0000-0000-000000000001}", " AAAAAAAA-0000-0000-0000-000000000001 "),
        ("aaaaaaaa-0000-0000-0000-000000000001", "{AAAAAAAA-0000-0000-0000-000000000001}"),
    ],
    ids=["case", "no-braces-in-idref", "no-braces-in-dtsid"],
)
def test_idref_ends_resolve_in_any_case_with_or_without_braces(dtsid: str, idref: str) -> None:
    pc = load_bytes(_old_package(dtsid, idref), file="old.dtsx").precedence_constraints[0]
    assert (pc.from_ref, pc.to_ref) == ("Package\\A", "Package\\B")


def test_an_unknown_idref_is_kept_as_written_for_the_planner_to_report() -> None:
    idref = "{CCCCCCCC-0000-0000-0000-000000000003}"
    pkg = load_bytes(_old_package("{AAAAAAAA-0000-0000-0000-000000000001}", idref), file="o.dtsx")
    assert pkg.precedence_constraints[0].from_ref == idref
