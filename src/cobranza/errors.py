"""Errors a person can act on: the CLI prints their message as one line, never a traceback."""


class CobranzaError(Exception):
    """Base of every actionable error; the message names the file, row, column or step."""


# SQLAlchemy's lines around the cause: the statement, its parameters, a URL, an autoflush note
_SQLALCHEMY_NOISE = ("[SQL:", "[parameters:", "(Background on this error", "(raised as a result of")


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first meaningful line of an error, for a one-line message (never empty).

    SQLAlchemy's statement, parameters and URL lines are skipped: they say nothing to the reader
    and may carry values.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith(_SQLALCHEMY_NOISE)]
    chosen = meaningful or lines
    if chosen:
        return chosen[0][:limit]
    return type(exc).__name__ if isinstance(exc, BaseException) else ""
