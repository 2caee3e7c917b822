"""Errors a person can act on: the CLI prints their message as one line, never a traceback."""


class CobranzaError(Exception):
    """Base of every actionable error; the message names the file, row, column or step."""
