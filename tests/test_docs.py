"""Generated docs match the code they are generated from."""

from pathlib import Path

from cobranza import contract
from cobranza.docs import contract_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_contract_doc_is_current():
    assert (DOCS / "contract.md").read_text(encoding="utf-8") == contract_markdown()


def test_contract_doc_names_every_column():
    text = contract_markdown()
    for spec in contract.FILES:
        assert f"## {spec.filename}" in text
        for col in spec.columns:
            assert f"| {col.name} | {col.type} |" in text
