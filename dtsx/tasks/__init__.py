"""The task plugin API and the built-in tasks."""
