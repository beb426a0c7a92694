"""Every catalogue of translated error messages (diandian_common.i18n) is sound: each
template's Chinese carries exactly the parameters of its English, each has text of its own
besides its parameters (so it cannot match any message whole), and each Chinese is Chinese."""
from __future__ import annotations

import importlib

import pytest

from diandian_common.i18n import GENERIC, Catalogue, placeholders
from diandian_common.testing import has_chinese

CATALOGUES = {"generic": GENERIC, **{name: importlib.import_module(f"{name}.messages").MESSAGES
                                     for name in ("calculator", "orders", "certificates", "ranking", "gateway")}}


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_entry_has_the_parameters_of_its_template(name):
    catalogue: Catalogue = CATALOGUES[name]
    wrong = {english: chinese for english, chinese in catalogue.entries.items()
             if sorted(placeholders(english)) != sorted(placeholders(chinese))}
    assert not wrong, wrong


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_template_has_text_of_its_own_and_every_translation_is_chinese(name):
    catalogue: Catalogue = CATALOGUES[name]
    for english, chinese in catalogue.entries.items():
        assert english.format(**{p: "" for p in placeholders(english)}).strip(), english
        assert has_chinese(chinese), (english, chinese)
        assert len(placeholders(english)) == len(set(placeholders(english))), english


def test_a_template_translates_its_own_rendering():
    """Each template, rendered with sample values, is found again and comes out in Chinese
    with the same values (no other template of its catalogue takes its place)."""
    for name, catalogue in CATALOGUES.items():
        full = catalogue + GENERIC
        for english, chinese in catalogue.entries.items():
            values = {p: f"v{n}x" for n, p in enumerate(placeholders(english))}
            assert full.translate(english.format(**values), "zh") == chinese.format(**values), (name, english)
