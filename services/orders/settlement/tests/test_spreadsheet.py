"""The accountants' CSV cells (domain/spreadsheet.py): pure, no database."""
from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.settlement.domain import spreadsheet
from orders.settlement.domain.spreadsheet import BOM, FORMULA_TRIGGERS, cell, document, neutralise, restore


@pytest.mark.parametrize("text, written", [
    ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
    ("+cmd", "'+cmd"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("-2+3", "'-2+3"),
    ("-6000", "'-6000"),          # text that reads like a number is still text
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
])
def test_text_that_a_spreadsheet_would_run_gets_a_quote(text, written):
    assert neutralise(text) == written == cell(text)


@pytest.mark.parametrize("text", [
    "青城山林场", "ICBC 6222 0000 1111", "CDCER-LQS-FOREST", "a=b", "x-1", " =1",  # not at the start
    "'=already quoted", "", "1+1",
])
def test_other_text_is_written_as_it_is(text):
    assert neutralise(text) == text == cell(text)


@pytest.mark.parametrize("number", [-6000, -1, 0, 1493, 10**12])
def test_numbers_stay_numbers(number):
    assert cell(number) == number and type(cell(number)) is int


def test_none_is_an_empty_cell_and_other_types_are_refused():
    assert cell(None) == ""
    for value in (True, 1.5, b"=1", ["="]):
        with pytest.raises(TypeError):
            cell(value)


@given(st.text())
def test_neutralising_is_reversible_idempotent_and_never_leaves_a_trigger_first(text):
    safe = neutralise(text)
    assert not safe.startswith(FORMULA_TRIGGERS)
    assert neutralise(safe) == safe
    assert restore(safe) == text


def test_the_document_has_a_bom_crlf_records_and_safe_cells():
    text = document(("owner_name", "project_code", "net_fen"),
                    [("=HYPERLINK(\"http://evil\")", "-2+3", -6000), ("青城山林场", None, 1493)])
    assert text.startswith(BOM) and text.count(BOM) == 1
    assert text[len(BOM):].split("\r\n") == [
        "owner_name,project_code,net_fen",
        '"\'=HYPERLINK(""http://evil"")",\'-2+3,-6000',
        "青城山林场,,1493",
        "",
    ]
    data = text.encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows == [["owner_name", "project_code", "net_fen"],
                    ["'=HYPERLINK(\"http://evil\")", "'-2+3", "-6000"], ["青城山林场", "", "1493"]]


def test_a_newline_inside_a_cell_stays_inside_its_quoted_cell():
    text = document(("owner_name",), [("line one\nline two",)], bom=False)
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["owner_name"], ["line one\nline two"]]
    assert text.endswith("\r\n") and not text.startswith(spreadsheet.BOM)
