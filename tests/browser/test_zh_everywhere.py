"""Issue 21, done when "a zh walk finds no English sentence": a phone in Chinese walks every
guest page — a scene and its form (sent empty, sent with fields the API rejects, sent in
full with every activity), the result with "how we calculated it" open, the order form
with a name the API rejects, paying in the sandbox, the certificate, its verification, the
rankings, the life footprint and its result, and the error pages — and every visible text,
label (aria-label, title, alt, placeholder), message a script will show (data-*-message)
and the document title is read with zh_text.english_runs.

Text marked ``lang="en"`` is exempt: a page says so where it shows an English proper name
on purpose (a scene's or a project's English name beside the Chinese one).

To walk a new page, add it to VISITS (a name, and a path that may use the walk's {scene},
{estimate}, {life_estimate}, {order}, {certificate} and {verify}); a page that needs a
guest's steps (a form, a payment) gets them in ``walk`` below, with ``look(name)`` after
each step worth reading.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Phone
from tests.browser.test_guest_flow import SCENE, TEXTS, pay_and_open_certificate
from tests.browser.zh_text import english_runs

pytestmark = pytest.mark.integration

# Pages visited by address once the walk has made its estimates, order and certificate.
VISITS = [
    ("index", "/"),
    ("scene", "/s/{scene}"),
    ("result (trip)", "/e/{estimate}"),
    ("result (life)", "/e/{life_estimate}"),
    ("pay (completed)", "/pay/{order}"),
    ("certificate", "/c/{certificate}"),
    ("verify", "/v/{verify}"),
    ("rankings", "/rankings"),
    ("rankings of the scene", "/rankings?scene={scene}"),
    ("life footprint", "/footprint"),
    ("my certificates (a second visit)", "/me"),
    ("404: no such page", "/no-such-page"),
    ("404: no such scene", "/s/no-such-scene"),
    ("404: no such estimate", "/e/00000000-0000-0000-0000-000000000000"),
    ("404: no such order", "/pay/ord_nosuchorder"),
    ("404: no such certificate", "/c/cert_nosuchcertificate"),
    ("verify: unknown code", "/v/NOSUCHCODE"),
]

# Every text of the page the classifier reads, with where it stands. ``api``: a message the
# page shows from an API error body (field errors), which i21-errors translates.
READ_PAGE = """() => {
  const shown = (el) => el.tagName.toLowerCase() === "title" || el.closest("svg")
    || (el.checkVisibility ? el.checkVisibility({visibilityProperty: true}) : !!el.offsetParent);
  const english = (el) => { const marked = el.closest("[lang]");
    return !!marked && marked !== document.documentElement && marked.lang.toLowerCase().startsWith("en"); };
  const classes = (el) => typeof el.className === "string" ? el.className.trim().split(/\\s+/).join(".") : "";
  const where = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (classes(el) ? "." + classes(el) : "");
  const ownMessages = (el) => { const form = el.closest("form");
    return form ? [...form.attributes].filter(a => a.name.endsWith("-message")).map(a => a.value) : []; };
  const texts = [{text: document.title, where: "document title", api: false}];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement, text = walker.currentNode.textContent.trim();
    if (!el || !text || el.closest("script, style, noscript, template")) continue;
    if (!shown(el) || english(el)) continue;
    const api = !!el.closest(".field-error")
      || (!!el.closest(".form-error") && !ownMessages(el).includes(text));
    texts.push({text, where: where(el), api});
  }
  for (const el of document.querySelectorAll("*")) {
    if (english(el)) continue;
    for (const attr of el.attributes) {
      if (["aria-label", "title", "alt", "placeholder", "data-template"].includes(attr.name)
          || (attr.name.startsWith("data-") && attr.name.endsWith("-message"))) {
        texts.push({text: attr.value, where: where(el) + "[" + attr.name + "]", api: false});
      }
    }
  }
  return texts;
}"""


@dataclass
class Walk:
    phone: Phone
    english: list[str] = field(default_factory=list)       # "page: text (where)"
    api_english: list[str] = field(default_factory=list)   # the same, of API error messages
    pages: list[str] = field(default_factory=list)

    def look(self, name: str) -> None:
        """Read the page as it stands, with every <details> open (what a guest can open)."""
        page = self.phone.page
        page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
        self.pages.append(name)
        for entry in page.evaluate(READ_PAGE):
            for run in english_runs(entry["text"]):
                finding = f"{name}: {run!r} in {entry['where']} ({page.url})"
                (self.api_english if entry["api"] else self.english).append(finding)
        self.phone.shot(re.sub(r"\W+", "-", name).strip("-"))


def fill(page, activity: str, values: dict) -> None:
    for name, value in values.items():
        control = page.locator(f"fieldset[data-activity={activity}] [data-field={name}]:not([type=hidden])")
        if control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


@pytest.fixture(scope="module")
def walk(chromium, stack):
    t = TEXTS["zh-CN"]
    phone = Phone(chromium, "zh-CN", stack.url, "zh-walk")
    page, walked = phone.page, Walk(phone)
    state = {"scene": SCENE}
    try:
        # A scene's form: empty, then with an airport and a country the calculator does not know.
        page.goto(f"/s/{SCENE}/form")
        walked.look("scene form")
        # The conference's preset sections (flight, hotel) open with defaults: closed, nothing is sent.
        page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = false; })")
        page.get_by_role("button", name=t["calculate"]).click()
        expect(page.locator(".form-error")).to_have_text(t["empty"])
        walked.look("scene form, sent empty")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
        fill(page, "flight", {"from": "ZZZ", "to": "CTU"})
        fill(page, "hotel", {"nights": "2", "country": "QQ"})
        page.get_by_role("button", name=t["calculate"]).click()
        expect(page.locator("[data-field=from][aria-invalid=true]")).to_have_count(1)
        walked.look("scene form, fields the API rejects")

        # Every activity, shared where it can be, so every kind of line and note is shown.
        fill(page, "flight", {"from": "PEK", "to": "CTU", "party_size": "2"})
        fill(page, "rail", {"distance_km": "300", "class": "conventional"})
        fill(page, "metro", {"distance_km": "12"})
        fill(page, "bus", {"distance_km": "5"})
        fill(page, "taxi", {"distance_km": "20", "party_size": "3"})
        fill(page, "car", {"distance_km": "50", "fuel": "electric", "party_size": "2"})
        fill(page, "hotel", {"nights": "2", "rooms": "1", "country": "AQ", "party_size": "2"})
        fill(page, "electricity", {"kwh": "100", "province": "CN-XZ"})
        fill(page, "natural_gas", {"m3": "10"})
        fill(page, "meal", {"count": "3", "diet": "vegetarian"})
        page.get_by_role("button", name=t["calculate"]).click()
        page.wait_for_url(re.compile(r"/e/[0-9a-f-]+$"))
        state["estimate"] = page.url.rsplit("/", 1)[1]

        # The order form: a name of blanks passes the browser and the API refuses it.
        page.get_by_label(t["name"]).fill("   ")
        page.get_by_role("button", name=t["continue"]).click()
        expect(page.locator("#display-name")).to_have_attribute("aria-invalid", "true")
        walked.look("result, a name the API rejects")
        page.get_by_label(t["name"]).fill("李雷")
        page.get_by_label(t["organization"]).fill("点点测试")
        page.get_by_role("button", name=t["continue"]).click()
        page.wait_for_url(re.compile(r"/pay/ord_"))
        state["order"] = page.url.rsplit("/", 1)[1].split("?")[0]
        walked.look("pay")
        pay_and_open_certificate(phone, t)
        state["certificate"] = page.url.rsplit("/", 1)[1].split("?")[0]
        state["verify"] = page.locator(".verify a").get_attribute("href").rsplit("/", 1)[1]

        # The life footprint (never empty: its diet is always chosen), a year of everything it asks.
        page.goto("/footprint")
        fill(page, "electricity", {"kwh": "200", "province": "CN-SC", "party_size": "2"})
        fill(page, "natural_gas", {"m3": "15"})
        fill(page, "car", {"distance_km": "120"})
        fill(page, "metro", {"distance_km": "40"})
        fill(page, "bus", {"distance_km": "10"})
        fill(page, "flight", {"trips": "2"})
        page.get_by_role("button", name=t["calculate"]).click()
        page.wait_for_url(re.compile(r"/e/[0-9a-f-]+$"))
        state["life_estimate"] = page.url.rsplit("/", 1)[1]

        # My certificates, a one-time code to move them, and a wrong code typed in.
        page.goto("/me")
        walked.look("my certificates")
        page.locator("#move-title ~ form button").click()
        expect(page.locator(".transfer-code")).to_be_visible()
        walked.look("my certificates, a code to move them")
        page.goto("/me")
        page.locator("#transfer-code").fill("WXYZ-2345")
        page.locator("#claim-title ~ form button").click()
        expect(page.locator("#transfer-code-error")).to_be_visible()
        walked.look("my certificates, a wrong code")

        for name, path in VISITS:
            page.goto(path.format(**state))
            walked.look(name)
        yield walked
    finally:
        phone.close()


def test_a_zh_walk_finds_no_english_sentence(walk):
    assert len(walk.pages) >= len(VISITS)
    assert walk.english == [], "English on zh pages:\n" + "\n".join(walk.english)
    assert walk.phone.errors == []


def test_api_error_messages_on_zh_pages_are_chinese(walk):
    assert walk.api_english == [], "English API errors on zh pages:\n" + "\n".join(walk.api_english)
