"""bcl_data: .NET base class library shims (registers its types with dtsx.scripting.values)."""

__all__: list[str] = []
