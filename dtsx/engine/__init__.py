"""Everything in dtsx that is not a task or a connection manager."""
