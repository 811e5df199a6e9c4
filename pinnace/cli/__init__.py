"""The `pinnace` command: every verb generic over the kinds of the API's ``Object`` oneof.

Modules: main (parser, dispatch, errors, exit codes), context (shared helpers for subcommand
modules), config (contexts file), output/columns (tables), and one module per verb group.
"""
