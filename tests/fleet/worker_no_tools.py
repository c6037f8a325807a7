"""A module without any ``@tool`` function (the CLI must refuse it with exit 2)."""

VALUE = 1
