"""The web app in a real browser (headless Chromium through Selenium): ask a question and
open a citation, then see the collection's map."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from rag.api.app import create_app
from rag.catalog import open_collection
from rag.config import Settings
from tests.conftest import COFFEE_REPLY, free_port, served_on_a_thread
from tests.fakes import HashEmbedder, ScriptedGenerator
from tests.test_explore import _fill

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(autouse=True)
def _browser_installed() -> None:
    # A missing browser fails the test rather than skipping it: scripts/bootstrap.sh test
    # installs one where it can.
    assert CHROMIUM is not None and DRIVER is not None, (
        "the browser tests need chromium and chromedriver: apt-get install chromium "
        "chromium-driver (scripts/bootstrap.sh test does so as root)"
    )


@pytest.fixture
def served(settings: Settings, embedder: HashEmbedder) -> Iterator[str]:
    """The app over the fakes on a free port, in a thread of this process."""
    port = free_port()
    local = settings.model_copy(update={"port": port, "answer_mode": "quote"})
    store = open_collection(local, embedder, create=True)
    try:
        _fill(store, embedder)
    finally:
        store.close()
    app = create_app(local, embedder=embedder, generator=ScriptedGenerator([COFFEE_REPLY]))
    with served_on_a_thread(app, port) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
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
