"""Volume agent unit tests: plugins, manager, binder rules and the binder on an in-memory store."""
