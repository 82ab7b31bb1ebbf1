"""The loader's speed code against its plain reference.

The loader reads every package through fast paths (models built without validation by
``_Maker``, ``_plain_task`` for the usual task, ``_attribute_constraint`` for a 2012+ constraint)
beside plain references (pydantic's strict validation, ``_executable_fields``, ``_constraint``).
``fast=False`` reads through the references only. These tests load every corpus, sample and test
package both ways and require the same model, object by object: the same classes, field values
and value types, field order, fields set, and XmlNode lines (which dumps leave out); a package
that fails must fail both ways with the same message.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dtsx.engine import loader
from dtsx.engine.errors import DtsxError
from dtsx.engine.model import Package, XmlNode
from pydantic import BaseModel

from tests._shared import REPO_ROOT, require_shared, shared_dir

_PROJECT = "project"  # the corpus's project files (.conmgr, Project.params)
SSIS_2016 = (
    "rtumaykin_ssis-build_example_SampleSSISProjectSQL2016_SampleSSISProject_Package_221.dtsx"
)
SSIS_2016_PASSWORD = "ssis123"  # "password = ssis123" in the project's own description


def _packages() -> list[Path]:
    base = shared_dir()
    corpus = sorted((base / "corpus" / "dtsx").glob("*.dtsx")) if base is not None else []
    samples = sorted((REPO_ROOT / "samples").glob("*.dtsx"))
    test_data = sorted((REPO_ROOT / "tests" / "data").rglob("*.dtsx"))
    return corpus + samples + test_data


PACKAGES = _packages()


def _bench_package(tasks: int) -> bytes:
    spec = importlib.util.spec_from_file_location(
        "dtsx_bench_load", REPO_ROOT / "bench" / "load.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data: bytes = module.synthetic_package(tasks)
    return data


def _assert_same(fast: Any, plain: Any, where: str = "package") -> None:
    """The same value, recursively: for models, the same class, field order, fields set and
    fields; for everything else, the same type and an equal value (so 1 is not True)."""
    assert type(fast) is type(plain), f"{where}: {type(fast).__name__} != {type(plain).__name__}"
    if isinstance(fast, BaseModel):
        assert list(fast.__dict__) == list(plain.__dict__), f"{where}: field order"
        assert fast.model_fields_set == plain.model_fields_set, f"{where}: fields set"
        assert fast.__pydantic_extra__ == plain.__pydantic_extra__, f"{where}: extra"
        assert fast.__pydantic_private__ == plain.__pydantic_private__, f"{where}: private"
        for name, value in fast.__dict__.items():
            _assert_same(value, plain.__dict__[name], f"{where}.{name}")
    elif isinstance(fast, list):
        assert len(fast) == len(plain), f"{where}: {len(fast)} items != {len(plain)}"
        for index, (a, b) in enumerate(zip(fast, plain, strict=True)):
            _assert_same(a, b, f"{where}[{index}]")
    elif isinstance(fast, dict):
        assert list(fast) == list(plain), f"{where}: keys"
        for key, value in fast.items():
            _assert_same(value, plain[key], f"{where}[{key!r}]")
    else:
        assert fast == plain, f"{where}: {fast!r} != {plain!r}"


def _both_ways(
    data: bytes, file: str, project_dir: Path | None = None, password: str | None = None
) -> tuple[Package, Package] | tuple[str, str]:
    """The package read with the fast paths and through the references, or both errors."""
    results: list[Package | str] = []
    for fast in (True, False):
        try:
            results.append(loader._load_bytes(data, file, project_dir, password, fast=fast))
        except DtsxError as exc:
            results.append(f"{type(exc).__name__}: {exc}")
    first, second = results
    if isinstance(first, str) or isinstance(second, str):
        assert (first, second) == (str(first), str(second)), "only one way failed"
        return str(first), str(second)
    return first, second


@pytest.mark.parametrize("path", PACKAGES, ids=[p.name[:60] for p in PACKAGES])
def test_every_package_reads_the_same_through_the_plain_reference(path: Path) -> None:
    base = shared_dir()
    project = base / "corpus" / _PROJECT if base is not None else None
    fast, plain = _both_ways(path.read_bytes(), str(path), project)
    if isinstance(fast, str):
        assert fast == plain
        return
    _assert_same(fast, plain)


def test_a_password_protected_package_reads_the_same_through_the_plain_reference() -> None:
    path = require_shared("corpus", "dtsx", SSIS_2016)
    fast, plain = _both_ways(path.read_bytes(), str(path), password=SSIS_2016_PASSWORD)
    assert isinstance(fast, Package) and isinstance(plain, Package)
    _assert_same(fast, plain)
    assert fast.executables, "the decrypted package has executables"


def test_the_benchmark_package_reads_the_same_through_the_plain_reference() -> None:
    fast, plain = _both_ways(_bench_package(60), "bench.dtsx")
    _assert_same(fast, plain)


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of one _PackageReader method (it still runs as written)."""
    calls = [0]
    original: Callable[..., Any] = getattr(loader._PackageReader, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(loader._PackageReader, name, counted)
    return calls


def test_each_way_takes_its_own_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above means something only if the two ways differ: the fast reading
    takes the fast paths and shares one fields set among fully given objects; the reference
    takes neither fast path and gives each validated object its own set."""
    plain_tasks = _counting(monkeypatch, "_plain_task")
    attribute_constraints = _counting(monkeypatch, "_attribute_constraint")
    data = _bench_package(4)
    fast, plain = _both_ways(data, "bench.dtsx")
    assert isinstance(fast, Package) and isinstance(plain, Package)
    assert (plain_tasks[0], attribute_constraints[0]) == (4, 4)  # the fast reading only
    fast_pcs, plain_pcs = (p.executables[0].precedence_constraints for p in (fast, plain))
    assert fast_pcs[0].__pydantic_fields_set__ is fast_pcs[1].__pydantic_fields_set__
    assert plain_pcs[0].__pydantic_fields_set__ is not plain_pcs[1].__pydantic_fields_set__


def _nodes(package: Package) -> Iterator[XmlNode]:
    for exe in package.walk():
        for top in (exe.object_data, exe.logging_options):
            if top is not None:
                yield from top.iter()


def test_the_comparison_sees_a_value_of_the_wrong_type_and_a_lost_line() -> None:
    fast, plain = _both_ways(_bench_package(2), "bench.dtsx")
    assert isinstance(fast, Package) and isinstance(plain, Package)
    _assert_same(fast, plain)
    task = fast.executables[0].executables[0]
    task.__dict__["disabled"] = 0  # equal to False, but not a bool
    with pytest.raises(AssertionError, match=r"\.disabled: int != bool"):
        _assert_same(fast, plain)
    task.__dict__["disabled"] = False
    node = next(_nodes(fast))
    node.__dict__["line"] = None
    with pytest.raises(AssertionError, match=r"\.line: NoneType != int"):
        _assert_same(fast, plain)


def test_the_reference_refuses_a_value_of_the_wrong_type() -> None:
    """The reference validates strictly: had a fast path stored text where a number belongs,
    reading through the reference would fail rather than quietly convert it."""
    with pytest.raises(ValueError, match="valid integer"):
        loader._VALIDATED.location({"file": "f.dtsx", "line": "3"})
    assert loader._TRUSTED.location({"file": "f.dtsx", "line": 3}).line == 3


def _one_constraint(attributes: str) -> bytes:
    return (
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="P">\n<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n'
        "<DTS:Executables>\n"
        '<DTS:Executable DTS:refId="Package\\A" DTS:ExecutableType="STOCK:SEQUENCE" '
        'DTS:ObjectName="A"/>\n'
        '<DTS:Executable DTS:refId="Package\\B" DTS:ExecutableType="Microsoft.SendMailTask" '
        'DTS:ObjectName="B" DTS:Disabled="maybe"><DTS:ObjectData><X/></DTS:ObjectData>'
        "</DTS:Executable>\n"
        "</DTS:Executables>\n<DTS:PrecedenceConstraints>\n"
        f'<DTS:PrecedenceConstraint DTS:refId="Package.PrecedenceConstraints[C]" {attributes}/>\n'
        "</DTS:PrecedenceConstraints></DTS:Executable>"
    ).encode()


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ('DTS:From="Package\\A" DTS:To="Package\\B" DTS:Value="high"', "e.dtsx:8: Value="),
        ('DTS:From="Package\\A" DTS:To="Package\\B" DTS:LogicalAnd="no"', "e.dtsx:8: LogicalAnd="),
        ('DTS:From="Package\\A"', "e.dtsx:8: the precedence constraint has no To end"),
        ('DTS:From="Package\\A" DTS:To="Package\\B" DTS:Value=" 2 "', "e.dtsx:5: Disabled="),
    ],
    ids=["bad-value", "bad-logical-and", "no-to-end", "bad-task-setting"],
)
def test_errors_on_the_fast_paths_read_as_the_reference_reports_them(
    attributes: str, words: str
) -> None:
    """A setting a fast path refuses is refused in the same words, at the same line."""
    data = _one_constraint(attributes)
    if "Disabled" not in words:  # the task's setting is fine unless it is what is tested
        data = data.replace(b'DTS:Disabled="maybe"', b'DTS:Disabled="True"')
    fast, plain = _both_ways(data, "e.dtsx")
    assert isinstance(fast, str) and fast == plain
    assert words in fast
