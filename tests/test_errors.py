"""first_line: the one line every error message is built from."""

from cobranza.errors import first_line


def test_first_line_skips_sqlalchemy_statement_and_url():
    exc = Exception(
        "(sqlite3.OperationalError) database is locked\n"
        "[SQL: SELECT name FROM sqlite_master WHERE client = ?]\n"
        "[parameters: ('123',)]\n"
        "(Background on this error at: https://sqlalche.me/e/20/e3q8)"
    )
    assert first_line(exc) == "(sqlite3.OperationalError) database is locked"
    noise_first = Exception("[SQL: SELECT 1]\n  disk I/O error  ")
    assert first_line(noise_first) == "disk I/O error"


def test_first_line_of_an_empty_error_names_its_type_and_is_cut_at_the_limit():
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError("\n\n")) == "ValueError"
    assert first_line("") == ""
    assert first_line(OSError("x" * 500), 200) == "x" * 200
