"""The web app in a real browser (headless Chromium through Selenium): upload a document and
watch its job, ask and open a citation with its supporting sentence marked, search, and the
collection's map (hover, click, similar documents, colour by folder, a located query). Each
screen is saved as a screenshot under RAG_TEST_ARTIFACTS (default .artifacts/screenshots)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from rag.api.app import create_app
from rag.catalog import open_collection
from rag.config import Settings
from tests.conftest import COFFEE_REPLY, PROJECT, free_port, served_on_a_thread
from tests.fakes import HashEmbedder, ScriptedGenerator
from tests.test_explore import _fill

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
LIGHTHOUSE = (
    "# Lighthouse keeping\n\nThe lighthouse lamp burns kerosene every night. The keeper trims "
    "the wick at dawn and polishes the lens.\n\n## Fog\n\nIn fog the horn sounds twice a "
    "minute.\n"
)
LIGHTHOUSE_REPLY = "The lighthouse lamp burns kerosene every night [1]."


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go. Session-scoped: read before each test's fixtures clear the RAG_*
    variables."""
    folder = Path(os.environ.get("RAG_TEST_ARTIFACTS") or PROJECT / ".artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def _browser_installed() -> None:
    # A missing browser fails the test rather than skipping it: scripts/bootstrap.sh test
    # installs one where it can.
    assert CHROMIUM is not None and DRIVER is not None, (
        "the browser tests need chromium and chromedriver: apt-get install chromium "
        "chromium-driver (scripts/bootstrap.sh test does so as root)"
    )


@contextmanager
def _served(
    settings: Settings, embedder: HashEmbedder, generator: ScriptedGenerator, **changes: Any
) -> Iterator[str]:
    """The app over the fakes and the topic documents on a free port, in a thread of this
    process."""
    port = free_port()
    local = settings.model_copy(update={"port": port, **changes})
    store = open_collection(local, embedder, create=True)
    try:
        _fill(store, embedder)
    finally:
        store.close()
    app = create_app(local, embedder=embedder, generator=generator)
    with served_on_a_thread(app, port) as url:
        yield url


@pytest.fixture
def served(settings: Settings, embedder: HashEmbedder) -> Iterator[str]:
    """Answers quote the documents."""
    with _served(settings, embedder, ScriptedGenerator([COFFEE_REPLY]), answer_mode="quote") as url:
        yield url


@pytest.fixture
def generating(settings: Settings, embedder: HashEmbedder) -> Iterator[str]:
    """Answers are the model's, checked against the documents."""
    with _served(settings, embedder, ScriptedGenerator([LIGHTHOUSE_REPLY])) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(DRIVER)))
    yield driver
    driver.quit()


def test_ask_open_a_citation_and_see_the_map(served: str, browser: Any) -> None:
    wait = WebDriverWait(browser, 30)
    browser.get(served)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#collection option"))
    question = browser.find_element(By.ID, "question")
    question.send_keys("tomato compost mulch seedling")
    browser.find_element(By.CSS_SELECTOR, "#ask-form button[type=submit]").click()
    cite = wait.until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#conversation .cite"))
    )
    shown = browser.find_element(By.ID, "conversation")
    assert "Quoted from the documents" in shown.text
    # The quote's Markdown shows as emphasis and highlight, not as asterisks and underscores.
    assert shown.find_elements(By.CSS_SELECTOR, "em") and shown.find_elements(
        By.CSS_SELECTOR, "mark"
    )
    assert "*" not in shown.text and "_(" not in shown.text
    cite.click()
    dialog = wait.until(expected_conditions.visibility_of_element_located((By.ID, "passage")))
    assert "garden" in dialog.text and "tomato" in dialog.text
    dialog.find_element(By.TAG_NAME, "button").click()

    # With a source prefix the question goes to POST /v1/query, which filters by it.
    browser.find_element(By.ID, "ask-prefix").send_keys("/d/coffee")
    browser.find_element(By.ID, "question").send_keys("tomato espresso")
    browser.find_element(By.CSS_SELECTOR, "#ask-form button[type=submit]").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#conversation .turn")) == 4)
    answer = browser.find_elements(By.CSS_SELECTOR, "#conversation .turn")[3]
    wait.until(lambda d: "descale" in answer.text)  # from the coffee documents only
    assert browser.find_element(By.ID, "conversation").text.count("Quoted from the documents") == 2

    # A search hit opens its document, chunk by chunk.
    browser.find_element(By.ID, "tab-search").click()
    browser.find_element(By.ID, "search-query").send_keys("descale espresso")
    browser.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
    hit = wait.until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#search-results .cite"))
    )
    hit.click()
    dialog = browser.find_element(By.ID, "passage")
    wait.until(lambda d: dialog.get_attribute("open") is not None)
    wait.until(lambda d: "chunks" in d.find_element(By.ID, "passage-where").text)
    assert dialog.find_elements(By.CSS_SELECTOR, "#passage-text section.chunk")
    dialog.find_element(By.TAG_NAME, "button").click()

    browser.find_element(By.ID, "tab-explore").click()
    wait.until(lambda d: "chunks" in d.find_element(By.ID, "map-status").text)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#clusters li")) >= 2
    drawn = browser.execute_script(
        "const c = document.getElementById('map');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n;"
    )
    assert drawn > 100  # the points are painted
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#outliers li"))


def _shoot(browser: Any, artifacts: Path, screen: str) -> None:
    browser.save_screenshot(str(artifacts / f"web-app-{screen}.png"))


# A point's centre on the map canvas, as an offset from the canvas's centre in CSS pixels (what
# ActionChains moves by): the first opaque pixel from the top is a dot's top edge.
_A_POINT = """
const c = document.getElementById('map');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
for (let i = 3; i < d.length; i += 4) if (d[i] > 200) {
  const x = (i >> 2) % c.width, y = Math.floor((i >> 2) / c.width) + 3;
  const box = c.getBoundingClientRect(), scale = box.width / c.width;
  return [Math.round((x - c.width / 2) * scale), Math.round((y - c.height / 2) * scale)];
}
return null;
"""
# Pixels of the query's diamond (near-black; no point is drawn in it).
_DIAMOND_PIXELS = """
const c = document.getElementById('map');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4)
  if (d[i + 3] > 250 && Math.max(d[i], d[i + 1], d[i + 2]) < 40) n++;
return n;
"""


def test_upload_then_a_generated_answer_marks_its_supporting_sentence(
    generating: str, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    wait = WebDriverWait(browser, 30)
    browser.get(generating)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#collection option"))

    # Upload a document and watch its job to the end.
    browser.find_element(By.ID, "tab-documents").click()
    document = tmp_path / "lighthouse.md"
    document.write_text(LIGHTHOUSE)
    chooser = browser.find_element(By.ID, "upload-input")
    browser.execute_script("arguments[0].hidden = false", chooser)  # as the file dialog would
    chooser.send_keys(str(document))
    status = browser.find_element(By.ID, "upload-status")
    wait.until(lambda d: "done" in status.text or "failed" in status.text)
    assert status.text == "Ingesting: done, 1/1 files"
    wait.until(lambda d: "lighthouse.md" in d.find_element(By.ID, "doc-rows").text)
    _shoot(browser, artifacts, "documents")

    # A generated answer; its citation opens with the supporting sentence marked.
    browser.find_element(By.ID, "tab-ask").click()
    browser.find_element(By.ID, "question").send_keys("What does the lighthouse lamp burn?")
    browser.find_element(By.CSS_SELECTOR, "#ask-form button[type=submit]").click()
    cite = wait.until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#conversation .cite"))
    )
    shown = browser.find_element(By.ID, "conversation")
    assert "kerosene" in shown.text and "Quoted from the documents" not in shown.text
    cite.click()
    dialog = wait.until(expected_conditions.visibility_of_element_located((By.ID, "passage")))
    marked = dialog.find_elements(By.CSS_SELECTOR, "#passage-text mark.support")
    assert [m.text for m in marked] == ["The lighthouse lamp burns kerosene every night."]
    assert "polishes the lens" in dialog.text  # the rest of the passage, unmarked
    _shoot(browser, artifacts, "ask")
    dialog.find_element(By.TAG_NAME, "button").click()

    browser.find_element(By.ID, "tab-search").click()
    browser.find_element(By.ID, "search-query").send_keys("keeper wick lens")
    browser.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
    wait.until(lambda d: "lighthouse.md" in d.find_element(By.ID, "search-results").text)
    _shoot(browser, artifacts, "search")

    browser.find_element(By.ID, "tab-settings").click()
    wait.until(lambda d: "RAG_ANSWER_MODE" in d.find_element(By.ID, "settings-json").text)
    _shoot(browser, artifacts, "settings")


def test_the_map_hover_click_colour_by_folder_and_a_located_query(
    served: str, browser: Any, artifacts: Path
) -> None:
    wait = WebDriverWait(browser, 30)
    browser.get(served)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#collection option"))
    browser.find_element(By.ID, "tab-explore").click()
    wait.until(lambda d: "chunks" in d.find_element(By.ID, "map-status").text)
    canvas = browser.find_element(By.ID, "map")

    # Hovering a point shows its document's title and the chunk's text. The whole canvas in
    # view: the pointer moves only within the viewport.
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    offset = browser.execute_script(_A_POINT)
    assert offset is not None
    ActionChains(browser).move_to_element_with_offset(canvas, *offset).perform()
    tip = wait.until(expected_conditions.visibility_of_element_located((By.ID, "map-tooltip")))
    wait.until(lambda d: tip.find_element(By.TAG_NAME, "p").text not in ("", "…"))
    title = tip.find_element(By.TAG_NAME, "strong").text
    assert title in {"coffee", "garden", "sailing", "quasar"}
    assert "part" in tip.text or "quasar" in tip.text  # the chunk's own words

    # A click opens the document and lists the documents nearest to it.
    ActionChains(browser).move_to_element_with_offset(canvas, *offset).click().perform()
    dialog = browser.find_element(By.ID, "passage")
    wait.until(lambda d: dialog.get_attribute("open") is not None)
    wait.until(lambda d: "chunks" in d.find_element(By.ID, "passage-where").text)
    assert dialog.find_element(By.ID, "passage-title").text == title
    dialog.find_element(By.TAG_NAME, "button").click()
    wait.until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#similar li")
            and "…" not in d.find_element(By.ID, "similar").text
        )
    )
    assert "Nearest to" in browser.find_element(By.ID, "similar-of").text

    # Colour by folder: the legend names the folders and the points change colour.
    by_cluster = browser.execute_script("return document.getElementById('map').toDataURL()")
    clusters = browser.find_elements(By.CSS_SELECTOR, "#clusters li")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map-legend li")) == len(clusters) >= 2
    browser.find_element(By.CSS_SELECTOR, "label[for=colour-folder]").click()
    assert browser.find_element(By.ID, "colour-folder").is_selected()
    legend = browser.find_element(By.ID, "map-legend")
    wait.until(lambda d: "coffee (9)" in legend.text)
    assert {"garden (9)", "sailing (9)", "odd (1)"} <= set(legend.text.splitlines())
    assert browser.execute_script("return document.getElementById('map').toDataURL()") != (
        by_cluster
    )

    # A located query: its nearest chunks lit, and a diamond where it falls.
    assert browser.execute_script(_DIAMOND_PIXELS) == 0
    browser.find_element(By.ID, "map-highlight").send_keys("tomato compost mulch")
    browser.find_element(By.CSS_SELECTOR, "#map-search-form button[type=submit]").click()
    wait.until(lambda d: "marks the query" in d.find_element(By.ID, "map-query").text)
    assert browser.execute_script(_DIAMOND_PIXELS) > 40
    browser.execute_script("window.scrollTo(0, 0)")
    _shoot(browser, artifacts, "explore")
