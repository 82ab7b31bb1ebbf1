"""The connection-manager plugin API and the built-in connection managers."""
