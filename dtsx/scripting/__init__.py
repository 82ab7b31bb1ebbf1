"""Script Tasks' languages: C# and VB.NET lowered to one AST and interpreted over .NET values.

Imported only when a package holds a Script Task (tree-sitter comes with it).
"""

__all__: list[str] = []
