"""Server paths as responses show them: relative to the lake or the extract root they lie in,
whole paths only, in any string of a JSON-like value."""

from __future__ import annotations

from pathlib import Path

from cobranza.api.paths import PathMasker


def test_paths_are_shown_relative_to_the_lake_and_the_extract_roots(tmp_path):
    lake, drop, other = tmp_path / "lake", tmp_path / "drop", tmp_path / "other"
    one = PathMasker(lake, [drop])
    assert one.text(f"{lake}/raw/versions/v1/_quality/quarantine.html") == (
        "<lake>/raw/versions/v1/_quality/quarantine.html"
    )
    assert one.text(f"file://{lake}/ml_metadata/report.html") == "<lake>/ml_metadata/report.html"
    assert one.text(f"sqlite:///{lake}/ml_metadata/mlflow.db") == (
        "sqlite:///<lake>/ml_metadata/mlflow.db"
    )
    assert one.text(f"{drop}/2026-01: empty extract") == "<extracts>/2026-01: empty extract"
    assert one.text(f"the lake {lake} is read-only.") == "the lake <lake> is read-only."
    assert one.text(f"the lake {lake}.") == "the lake <lake>."
    # only whole paths: a sibling whose name starts alike, or a longer name, is left as it is
    for untouched in (f"{lake}2/x", f"{lake}.bak", f"{drop}-old/x", f"x{lake}", str(other)):
        assert one.text(untouched) == untouched
    several = PathMasker(lake, [drop, other])
    assert several.text(f"{other}/a {drop}/b") == "<extracts:2>/a <extracts:1>/b"
    assert several.value({"extract_dir": f"{drop}/a", "files": [f"{lake}/x"], f"{lake}": 3}) == {
        "extract_dir": "<extracts:1>/a",
        "files": ["<lake>/x"],
        "<lake>": 3,
    }


def test_a_symlinked_lake_is_recognised_by_either_spelling(tmp_path):
    real = tmp_path / "real-lake"
    real.mkdir()
    link = tmp_path / "lake"
    link.symlink_to(real, target_is_directory=True)
    masker = PathMasker(link)
    assert masker.text(f"{real}/gold") == "<lake>/gold"
    assert masker.text(f"{link}/gold") == "<lake>/gold"
    assert masker.text(str(Path("relative/lake"))) == "relative/lake"
