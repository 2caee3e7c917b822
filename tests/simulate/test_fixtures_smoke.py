"""The shared fixtures exist and carry the ten contract files (version 2), manifest and truth."""

from cobranza.contract import MANIFEST, TRUTH_DIR, TRUTH_FILE
from cobranza.simulate import extract_files


def test_fixture_extracts_have_all_files(sim_extract, sim_extract_clean, sim_extract_latin1):
    for folder in (sim_extract, sim_extract_clean, sim_extract_latin1):
        names = {p.name for p in folder.iterdir() if p.is_file()}
        assert names == {spec.filename for spec in extract_files()} | {MANIFEST}
        assert (folder / TRUTH_DIR / TRUTH_FILE).stat().st_size > 0
