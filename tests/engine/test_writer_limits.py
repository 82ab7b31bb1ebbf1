"""What the writer writes, the loader reads: nesting, value and file-size limits agree.

Each case is a package loaded (or a loaded package changed through the model) that the writer
either writes as a file the loader reads back, or refuses with a PackageWriteError naming the
element and the limit. Nothing may be written that the loader then refuses.
"""

from __future__ import annotations

import re
import uuid

import pytest
from dtsx.engine.errors import PackageLoadError
from dtsx.engine.loader import load_bytes
from dtsx.engine.model import (
    DTS_NS,
    MAX_PACKAGE_BYTES,
    MAX_XML_DEPTH,
    MAX_XML_VALUE_BYTES,
    Package,
    Variable,
    XmlNode,
)
from dtsx.engine.errors import PackageWriteError
from dtsx.engine.writer import write


def v3_package(levels: int, description: str = "") -> bytes:
    """A 2008-format package with ``levels`` Sequence containers, each inside the one before;
    the first one has ``description``."""

    def sequence(depth: int) -> str:
        inner = sequence(depth + 1) if depth < levels else ""
        return (
            '<DTS:Executable DTS:ExecutableType="STOCK:SEQUENCE">'
            f'<DTS:Property DTS:Name="ObjectName">S{depth}</DTS:Property>'
            "<DTS:Property "
            f'DTS:Name="Description">{description if depth == 1 else ""}</DTS:Property>'
            f'<DTS:Property DTS:Name="DTSID">{{{uuid.UUID(int=depth)}}}</DTS:Property>'
            '<DTS:Property DTS:Name="CreationName">STOCK:SEQUENCE</DTS:Property>'
            f"{inner}</DTS:Executable>"
        )

    return (
        '<?xml version="1.0"?>\n<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" '
        'DTS:ExecutableType="SSIS.Package.2"><DTS:Property '
        'DTS:Name="PackageFormatVersion">3</DTS:Property>'
        '<DTS:Property DTS:Name="ObjectName">deep</DTS:Property>'
        f"{sequence(1) if levels else ''}</DTS:Executable>"
    ).encode()


def string_variable() -> Variable:
    """A String variable User::V, as the loader reads it from a format-8 package."""
    return load_bytes(
        b'<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        b'DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="v"><DTS:Property '
        b'DTS:Name="PackageFormatVersion">8'
        b'</DTS:Property><DTS:Variables><DTS:Variable DTS:Namespace="User" DTS:ObjectName="V" '
        b'DTS:DTSID="{00000000-0000-0000-0000-00000000000C}"><DTS:VariableValue DTS:DataType="8">x'
        b"</DTS:VariableValue></DTS:Variable></DTS:Variables></DTS:Executable>",
        file="one-variable.dtsx",
    ).variables[0]


def written_or_refused(package: Package) -> Package | PackageWriteError:
    """The package read back from what the writer wrote, or the writer's refusal; never a file
    the loader refuses."""
    try:
        data = write(package)
    except PackageWriteError as refusal:
        return refusal
    try:
        return load_bytes(data, file="written.dtsx")
    except PackageLoadError as exc:
        pytest.fail(f"the writer wrote a file the loader refuses: {exc}")


def depth_of(package: Package) -> int:
    levels, exe = 0, package
    while exe.executables:
        levels, exe = levels + 1, exe.executables[0]
    return levels


def test_nesting_that_loads_from_format_3_is_written_or_refused_never_half_readable() -> None:
    outcomes = {}
    for levels in range(
        120, 132
    ):  # format 8 puts each level two elements down: the limit is in here
        original = load_bytes(v3_package(levels), file="deep.dtsx")
        assert depth_of(original) == levels
        again = written_or_refused(original)
        outcomes[levels] = again
        if isinstance(again, Package):
            assert depth_of(again) == levels and again.name == "deep"
        else:
            text = str(again)
            assert f"over the loader's limit of {MAX_XML_DEPTH} levels" in text
            # It names the first executable too deep and how deep it would be.
            match = re.search(r"\\S(\d+) would be nested (\d+) elements deep", text)
            assert (
                match
                and int(match.group(1)) <= levels
                and int(match.group(2)) == 1 + 2 * int(match.group(1))
            )
            assert "\n" not in text
    kinds = [isinstance(v, Package) for v in outcomes.values()]
    assert kinds[0] and not kinds[-1] and kinds == sorted(kinds, reverse=True)


def test_far_deeper_models_are_refused_before_the_writer_recurses() -> None:
    package = load_bytes(
        v3_package(200), file="deep.dtsx"
    )  # 200 levels: 400 elements deep once written
    exe = package
    for _ in range(200):
        exe = exe.executables[0]
    for _ in range(3):  # a model made deeper still through the API
        exe.executables = [exe.model_copy(update={"executables": []})]
        exe = exe.executables[0]
    with pytest.raises(
        PackageWriteError,
        match=rf"the executable .* would be nested \d+ elements deep .* {MAX_XML_DEPTH} levels",
    ):
        write(package)


@pytest.mark.slow
def test_a_long_description_loaded_as_text_is_written_or_refused_as_an_attribute() -> None:
    # Format 3 keeps the description as element text (loads up to MAX_XML_VALUE_BYTES); format 8
    # writes it as an attribute, which libxml2 reads within its look-ahead of the same size.
    for size in (MAX_XML_VALUE_BYTES - 5000, MAX_XML_VALUE_BYTES - 100, MAX_XML_VALUE_BYTES):
        original = load_bytes(v3_package(1, "d" * size), file="long.dtsx")
        assert len(original.executables[0].description or "") == size
        again = written_or_refused(original)
        if isinstance(again, Package):
            assert again.executables[0].description == original.executables[0].description
        else:
            assert "the attributes of the element DTS:Executable of Package\\S1 would take" in str(
                again
            )
            assert "most in DTS:Description" in str(again) and "over the loader's limit of" in str(
                again
            )
            assert size > MAX_XML_VALUE_BYTES - 5000


@pytest.mark.slow
def test_variable_values_up_to_the_limit_round_trip_and_one_byte_more_is_refused() -> None:
    package = load_bytes(v3_package(0), file="vars.dtsx")
    variable = string_variable()
    two_byte = "\u00e9" * (MAX_XML_VALUE_BYTES // 2)  # the limit is in UTF-8 bytes, not characters
    package.variables = [variable.model_copy(update={"value": two_byte})]
    again = written_or_refused(package)
    assert isinstance(again, Package) and again.variables[0].value == two_byte
    package.variables = [variable.model_copy(update={"value": two_byte + "x"})]
    refusal = written_or_refused(package)
    assert isinstance(refusal, PackageWriteError)
    assert str(refusal) == (
        f"the text of the element DTS:VariableValue of {variable.ref_id} is "
        f"{MAX_XML_VALUE_BYTES + 1:,} bytes, "
        f"over the loader's limit of {MAX_XML_VALUE_BYTES:,} bytes for one value; shorten it "
        "or keep the data in a file."
    )


@pytest.mark.slow
def test_a_package_over_the_file_limit_is_refused_rather_than_written() -> None:
    package = load_bytes(v3_package(0), file="vars.dtsx")
    base = string_variable()
    chunk = "v" * (
        MAX_XML_VALUE_BYTES - 10
    )  # each value fits; together they are over the file limit
    count = MAX_PACKAGE_BYTES // len(chunk) + 1
    package.variables = [
        base.model_copy(
            update={
                "name": f"V{i}",
                "ref_id": f"Package.Variables[User::V{i}]",
                "value": chunk,
                "dtsid": f"{{{uuid.UUID(int=i)}}}",
            }
        )
        for i in range(count)
    ]
    refusal = written_or_refused(package)
    assert isinstance(refusal, PackageWriteError)
    assert f"over the loader's limit of {MAX_PACKAGE_BYTES // (1024 * 1024)} MiB for a file" in str(
        refusal
    )


def test_deep_object_data_is_refused_naming_its_executable() -> None:
    package = load_bytes(v3_package(1), file="data.dtsx")
    node = XmlNode(tag="Leaf")
    for level in range(
        MAX_XML_DEPTH
    ):  # Level0 innermost: Level3 lands at depth 257 under S1 (depth 3)
        node = XmlNode(tag=f"Level{level}", children=[node])
    package.executables[0].object_data = XmlNode(tag=f"{{{DTS_NS}}}ObjectData", children=[node])
    refusal = written_or_refused(package)
    assert isinstance(refusal, PackageWriteError)
    assert str(refusal).startswith(
        f"the element Level{MAX_XML_DEPTH - 253} of Package\\S1 would be nested 257 elements deep"
    )
