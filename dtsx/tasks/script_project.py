"""A Script Task's project as the package stores it: language, entry point, variable lists, every
``ProjectItem`` with the package line its text starts on, and the compiled ``BinaryItem`` as bytes.

This module reads; it compiles nothing and never runs the binary. The rules follow
``shared/spec/script-task.md`` §1 (formats 2, 3, 6 and 8):

- All task data is one un-namespaced ``<ScriptProject>`` in ``<DTS:ObjectData>``; its
  ``ProjectItem`` children are the project's files (one CDATA section each), its ``BinaryItem``
  children base64 of the compiled assembly (2005 adds a ``.pdb``).
- Formats 2 and 3 write a newline between the start tag and ``<![CDATA[`` that is not part of the
  file: it is dropped, and the item's first line is the package line after the start tag.
- Item names are project paths in each format's spelling (``dts://Scripts/<Name>/ScriptMain.vsaitem``,
  ``\\properties\\resources.resx``, ``Properties\\Resources.resx``, now and then an absolute temp
  path); :attr:`ScriptSource.path` is the project-relative ``/`` path with ``..``, roots and
  characters no file system takes removed, so a consumer may join it under a folder safely.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from dtsx.engine.errors import PackageLoadError
from dtsx.engine.model import Executable, Package, XmlNode

__all__ = [
    "SCRIPT_TASK_KEYS",
    "ScriptBinary",
    "ScriptProject",
    "ScriptSource",
    "is_script_task",
    "read_script_project",
    "safe_file_name",
    "script_tasks",
]

# The registry key a Script Task's CreationName/ExecutableType normalises to in every format
# (``engine.registry.normalise_type``: class names and the API moniker ``STOCK:ScriptTask``).
SCRIPT_TASK_KEYS = frozenset({"Microsoft.ScriptTask"})

# Basenames of the file that holds ScriptMain (2005 keeps VB code in a .vsaitem).
_ENTRY_FILES = frozenset({"scriptmain.cs", "scriptmain.vb", "scriptmain.vsaitem"})
_CODE_SUFFIXES = (".cs", ".vb", ".vsaitem")
_PROJECT_SUFFIXES = (".csproj", ".vbproj", ".vsaproj")
# Folders of generated project code (AssemblyInfo, Resources, Settings), not the user's script.
_GENERATED_FOLDERS = frozenset({"properties", "my project"})
_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|[\\/]{2})")
# Characters Windows refuses in a file name, and control characters: replaced by "_".
_UNSAFE_CHARS = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')
_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{d}{n}" for d in ("com", "lpt") for n in range(1, 10)}
)
_MAX_PART = 120


@dataclass(frozen=True, slots=True)
class ScriptSource:
    """One ``ProjectItem``: ``name`` as the package writes it, ``path`` project-relative and safe
    (``Properties/AssemblyInfo.cs``), ``text`` the file, ``line`` the package file line holding
    its first line (None for a package built in memory)."""

    name: str
    path: str
    text: str
    line: int | None

    def package_line(self, script_line: int) -> int | None:
        """The package file line of this file's 1-based ``script_line``. Lines are counted on
        ``\\n`` only, as the XML parser counts them (it also turned each CRLF into LF)."""
        return None if self.line is None else self.line + script_line - 1

    @property
    def lines(self) -> list[str]:
        """The text split into lines the way :meth:`package_line` counts them."""
        return self.text.split("\n")


@dataclass(frozen=True, slots=True)
class ScriptBinary:
    """One ``BinaryItem``: the compiled assembly (or 2005's ``.pdb``), kept as bytes, never run."""

    name: str
    path: str
    data: bytes = field(repr=False)
    line: int | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class ScriptProject:
    """A Script Task's ``ScriptProject``, read whole.

    ``language`` is ``CSharp`` or ``VisualBasic`` (2005's "Microsoft Visual Basic .NET" included);
    ``entry_point`` as written, else SSIS's default (``ScriptMain``, the class, in 2005; ``Main``,
    the method, since 2008); the variable lists in the order SSIS keeps them. ``sources`` are the
    user's code files, ``project_files`` everything else (``.csproj``/``.vbproj``, AssemblyInfo,
    resources, settings), both in package order.
    """

    name: str | None
    language: str
    entry_point: str
    read_only_variables: tuple[str, ...]
    read_write_variables: tuple[str, ...]
    sources: tuple[ScriptSource, ...]
    project_files: tuple[ScriptSource, ...]
    binaries: tuple[ScriptBinary, ...]
    file: str | None = None
    line: int | None = None

    @property
    def entry(self) -> ScriptSource | None:
        """The source holding ScriptMain (``ScriptMain.cs``/``.vb``/``.vsaitem``), if any."""
        return next((s for s in self.sources if _basename(s.path) in _ENTRY_FILES), None)

    @property
    def items(self) -> tuple[ScriptSource, ...]:
        """Every ``ProjectItem``, sources and project files, in package order (by line)."""
        return tuple(sorted((*self.sources, *self.project_files), key=_item_order))

    @property
    def binary(self) -> bytes | None:
        """The compiled assembly (the ``.dll``, else the first ``BinaryItem``), or None."""
        found = self._assembly()
        return None if found is None else found.data

    @property
    def binary_name(self) -> str | None:
        found = self._assembly()
        return None if found is None else found.name

    def _assembly(self) -> ScriptBinary | None:
        dlls = [b for b in self.binaries if b.path.lower().endswith(".dll")]
        return next(iter(dlls or self.binaries), None)


def _item_order(item: ScriptSource) -> int:
    return item.line if item.line is not None else 0


def is_script_task(exe: Executable) -> bool:
    """Whether ``exe`` is a Script Task, in any format's spelling of its type."""
    return exe.type_key in SCRIPT_TASK_KEYS


def script_tasks(package: Package) -> list[Executable]:
    """Every Script Task of the package, event handlers included, in document order."""
    return [e for e in package.walk() if is_script_task(e)]


def read_script_project(exe: Executable, *, format_version: int | None = None) -> ScriptProject:
    """The Script Task's project, from its ObjectData.

    ``format_version`` is the package's (``Package.format_version``); the task's type tells the
    format too (``Version=9.`` is 2005, ``Version=10.`` is 2008). A project the
    loader could not have been given by SSIS (no ``ScriptProject``, an item without a name, two
    items at one path, a binary that is not base64) raises :class:`PackageLoadError` naming the
    package file and line.
    """
    reader = _Reader(exe, format_version)
    return reader.project()


class _Reader:
    """Reads one task's ScriptProject; holds what every error message names."""

    def __init__(self, exe: Executable, format_version: int | None) -> None:
        self.exe = exe
        self.file = exe.location.file if exe.location is not None else None
        written_by = _format_of(exe.raw_type)
        self.format = format_version if format_version is not None else written_by
        # The task's own type counts too: a 2005/2008 task rewritten as format 8 by dtsx's writer
        # keeps its type and the newline before its text (which the writer then escapes).
        self.newline_before_text = self.format in (2, 3) or written_by in (2, 3)

    def error(self, node: XmlNode | None, message: str) -> PackageLoadError:
        line = node.line if node is not None else None
        if line is None and self.exe.location is not None:
            line = self.exe.location.line
        where = f"Script Task {self.exe.name!r} [{self.exe.ref_id}]"
        return PackageLoadError(
            f"{where}: {message}; the script project is damaged: open and save the task in SSIS's "
            "designer, or fix the element by hand",
            file=self.file,
            line=line,
        )

    def project(self) -> ScriptProject:
        data = self.exe.object_data
        if data is None or (not data.children and not (data.text or "").strip()):
            # No ObjectData at all (a task built by hand): the new, empty project SSIS starts with.
            return self.empty()
        node = data.find("ScriptProject")
        if node is None:
            raise self.error(data, "its ObjectData holds no <ScriptProject> element")
        name = node.get("Name") or node.get("VsaProjectName")
        items = [self.item(child) for child in node.findall("ProjectItem")]
        binaries = [self.binary(child) for child in node.findall("BinaryItem")]
        items, binaries = self.rooted(items, binaries)
        self.check_unique(
            node, [(i.path, i.name) for i in items] + [(b.path, b.name) for b in binaries]
        )
        sources = tuple(i for i in items if _is_source(i.path))
        return ScriptProject(
            name=name,
            language=self.language(node, items),
            entry_point=node.get("EntryPoint") or self.default_entry_point(),
            read_only_variables=_names(node.get("ReadOnlyVariables")),
            read_write_variables=_names(node.get("ReadWriteVariables")),
            sources=sources,
            project_files=tuple(i for i in items if not _is_source(i.path)),
            binaries=tuple(b for b in binaries if b.data),
            file=self.file,
            line=node.line,
        )

    def empty(self) -> ScriptProject:
        location = self.exe.location
        return ScriptProject(
            name=None,
            language="CSharp",
            entry_point=self.default_entry_point(),
            read_only_variables=(),
            read_write_variables=(),
            sources=(),
            project_files=(),
            binaries=(),
            file=self.file,
            line=location.line if location is not None else None,
        )

    def default_entry_point(self) -> str:
        # 2005 names the class, 2008+ the method of ScriptMain (spec §1.2).
        return "ScriptMain" if self.format == 2 else "Main"

    def item(self, node: XmlNode) -> ScriptSource:
        name = self.item_name(node, "ProjectItem")
        if node.children:
            raise self.error(
                node, f"ProjectItem {name!r} holds elements instead of the file's text"
            )
        text = node.text or ""
        line = node.line
        if self.newline_before_text and text[:1] in ("\n", "\r"):
            # 2005/2008 write a newline before <![CDATA[ (spec §1.3): not part of the file.
            text = text[2:] if text.startswith("\r\n") else text[1:]
            line = None if line is None else line + 1
        return ScriptSource(name=name, path=self.path(node, name), text=text, line=line)

    def binary(self, node: XmlNode) -> ScriptBinary:
        name = self.item_name(node, "BinaryItem")
        packed = "".join((node.text or "").split())
        try:
            data = base64.b64decode(packed, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self.error(node, f"BinaryItem {name!r} is not base64 ({exc})") from exc
        return ScriptBinary(name=name, path=self.path(node, name), data=data, line=node.line)

    def item_name(self, node: XmlNode, kind: str) -> str:
        name = (node.get("Name") or "").strip()
        if not name:
            raise self.error(node, f"a {kind} has no Name")
        return name

    def path(self, node: XmlNode, name: str) -> str:
        path = project_path(name)
        if not path:
            raise self.error(node, f"the item name {name!r} names no file")
        return path

    def rooted(
        self, items: list[ScriptSource], binaries: list[ScriptBinary]
    ) -> tuple[list[ScriptSource], list[ScriptBinary]]:
        """Items named by absolute temp paths (one 2008 task) made relative to the folder of the
        project file, when the project file is named that way too."""
        roots = [
            _windows_dir(i.name)
            for i in items
            if _ABSOLUTE.match(i.name) and i.name.lower().endswith(_PROJECT_SUFFIXES)
        ]
        if not roots:
            return items, binaries
        root = roots[0]

        def relative(name: str, path: str) -> str:
            if _ABSOLUTE.match(name) and name.lower().startswith(root.lower()):
                return project_path(name[len(root) :]) or path
            return path

        return (
            [_replace_path(i, relative(i.name, i.path)) for i in items],
            [ScriptBinary(b.name, relative(b.name, b.path), b.data, b.line) for b in binaries],
        )

    def check_unique(self, node: XmlNode, entries: list[tuple[str, str]]) -> None:
        # Compared case-insensitively: the project was a folder on Windows.
        seen: dict[str, str] = {}
        for path, name in entries:
            key = path.lower()
            if key in seen:
                raise self.error(
                    node, f"the items {seen[key]!r} and {name!r} are both the file {path!r}"
                )
            seen[key] = name

    def language(self, node: XmlNode, items: list[ScriptSource]) -> str:
        written = (node.get("Language") or "").strip()
        if written:
            found = _language(written)
            if found is None:
                raise self.error(node, f"Language={written!r} is neither CSharp nor VisualBasic")
            return found
        # Not written: told from the code files; an empty project is SSIS's default, C#.
        suffixes = {_basename(i.path).rsplit(".", 1)[-1] for i in items if _is_source(i.path)}
        return "VisualBasic" if suffixes & {"vb", "vsaitem"} and "cs" not in suffixes else "CSharp"


def _replace_path(item: ScriptSource, path: str) -> ScriptSource:
    return ScriptSource(item.name, path, item.text, item.line)


def _format_of(raw_type: str) -> int | None:
    """The package format a Script Task's assembly-qualified type was written by, if it says."""
    if "Version=9." in raw_type:
        return 2
    if "Version=10." in raw_type:
        return 3
    if "Version=11." in raw_type:
        return 6
    return None


def _language(written: str) -> str | None:
    low = written.lower()
    if "basic" in low or low in ("vb", "vb.net"):
        return "VisualBasic"
    if "csharp" in low or "c#" in low or low == "cs":
        return "CSharp"
    return None


def _names(written: str | None) -> tuple[str, ...]:
    """A ReadOnlyVariables/ReadWriteVariables list: comma-separated, in SSIS's order."""
    return tuple(part.strip() for part in (written or "").split(",") if part.strip())


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1].lower()


def _windows_dir(name: str) -> str:
    cut = max(name.rfind("\\"), name.rfind("/"))
    return name[: cut + 1]


def _is_source(path: str) -> bool:
    """User code (spec §1.5): a code file outside Properties/My Project, not a designer file."""
    low = path.lower()
    parts = low.split("/")
    return (
        low.endswith(_CODE_SUFFIXES)
        and not (len(parts) > 1 and parts[0] in _GENERATED_FOLDERS)
        and ".designer." not in parts[-1]
    )


def project_path(name: str) -> str:
    """The project-relative ``/`` path of an item name, safe to join under a folder: ``dts://``
    prefixes and absolute roots dropped (an absolute name keeps only its file name), ``.``
    dropped, ``..`` resolved but never above the project folder, characters Windows refuses
    replaced by ``_``. Empty if nothing names a file."""
    text = name.strip()
    if text.lower().startswith("dts://"):
        parts = _parts(text[len("dts://") :])
        if len(parts) >= 3 and parts[0].lower() == "scripts":
            parts = parts[2:]  # dts://Scripts/<project>/<file>
    elif _ABSOLUTE.match(text):
        parts = _parts(text)[-1:]
    else:
        parts = _parts(text)
    return "/".join(safe_file_name(p) for p in parts)


def _parts(text: str) -> list[str]:
    """Path parts with ``.`` dropped and ``..`` resolved, never above the project's folder."""
    parts: list[str] = []
    for part in re.split(r"[\\/]+", text):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", ".") and not part.endswith(":"):
            parts.append(part)
    return parts


def safe_file_name(part: str, fallback: str = "_") -> str:
    """One path part any file system takes: no separators, control or reserved characters, no
    trailing dots or spaces, not ``.``/``..`` nor a Windows device name, at most 120 characters."""
    cleaned = _UNSAFE_CHARS.sub("_", part.replace("/", "_").replace("\\", "_")).strip(" .")
    cleaned = cleaned[:_MAX_PART].rstrip(" .")
    if not cleaned:
        return fallback
    if cleaned.split(".", 1)[0].lower() in _RESERVED_NAMES:
        cleaned = f"_{cleaned}"
    return cleaned
