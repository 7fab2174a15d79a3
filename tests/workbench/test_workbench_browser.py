"""Both workbench pages in a real headless Chromium (Debian's package, driven by Selenium) against the local stack.

Set ``WORKBENCH_SCREENSHOTS=DIR`` to save screenshots of both pages there (docs/workbench.md's come from this test).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pg8000.native
import pytest

from invoice_pipeline import db
from invoices_cli.comparison import ComparisonFilter, compare_models
from invoices_cli.workbench.server import running_workbench
from local.browser import find_browser, headless_chrome
from tests.workbench.conftest import BUCKET, MODEL_A, MODEL_B, TwoModels

pytestmark = pytest.mark.skipif(find_browser() is None, reason="chromium/chromedriver not installed (make install)")


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = headless_chrome()
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def workbench_url(two_models: TwoModels, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ALLOWED_BUCKETS", BUCKET)
    with running_workbench(reviewer="browser-test") as url:
        yield url
        db.pool.discard()


def expected_rows() -> dict[str, dict[str, Any]]:
    with db.pool.connection() as connection:
        return {row["llm"]: row for row in compare_models(connection, ComparisonFilter())}


def cell(browser: Any, table: str, llm: str, field: str) -> str:
    from selenium.webdriver.common.by import By

    text: str = browser.find_element(By.CSS_SELECTOR, f"#{table} tr[data-llm='{llm}'] td[data-field='{field}']").text
    return text


def assert_clean(browser: Any, origin: str) -> None:
    """No console error, and every resource the page loaded came from the workbench itself or a data: URI."""
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    names = browser.execute_script(
        "return [location.href].concat(performance.getEntries().map(e => e.name).filter(n => n.includes(':')))"
    )
    assert [name for name in names if not (name.startswith(origin) or name.startswith("data:"))] == []


def screenshot(browser: Any, name: str) -> None:
    folder = os.environ.get("WORKBENCH_SCREENSHOTS")
    if folder:
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1400, min(max(height, 800), 2200))
        browser.save_screenshot(str(Path(folder) / name))
        browser.set_window_size(1400, 1000)


def test_comparison_and_review_in_a_real_browser(
    browser: Any, workbench_url: str, sql: pg8000.native.Connection
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.wait import WebDriverWait

    parts = urlsplit(workbench_url)
    origin = f"{parts.scheme}://{parts.netloc}"

    # without the token: refused
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(origin + "/")
    assert refused.value.code == 403

    # comparison page: the figures of `report --format json`, the three plots, nothing fetched from elsewhere
    browser.get(workbench_url)
    assert browser.current_url == origin + "/"  # the token traded for a cookie, gone from the address bar
    rows = expected_rows()
    for llm in (MODEL_A, MODEL_B):
        row = rows[llm]
        assert cell(browser, "models", llm, "orders_done") == str(row["orders_done"])
        assert cell(browser, "models", llm, "orders_failed") == str(row["orders_failed"])
        assert cell(browser, "models", llm, "items") == str(row["items"])
        assert cell(browser, "models", llm, "accuracy_f1") == f"{row['accuracy_f1']:.3f}"
        assert cell(browser, "models", llm, "cost_per_invoice_usd") == f"${row['cost_per_invoice_usd']}"
        assert cell(browser, "models", llm, "model_ms_p90") == f"{row['model_ms_p90']} ms"
    assert cell(browser, "fields", MODEL_A, "quantity") == "100.0%"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-accuracy-cost circle.point")) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-agreement rect.cell")) == 4
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-items rect.bar")) == 2 * 8
    assert "not an image" in browser.find_element(By.ID, "failures").text
    assert_clean(browser, origin)
    screenshot(browser, "workbench-comparison.png")

    # review queue: the order with warnings first; open it with the keyboard
    browser.get(origin + "/review")
    first = browser.find_element(By.CSS_SELECTOR, "#queue tbody tr")
    assert first.get_attribute("data-order") == "2"
    first.send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda driver: driver.current_url == origin + "/review/2")
    marked = browser.find_elements(By.CSS_SELECTOR, f".model-lines[data-llm='{MODEL_B}'] tr.bad")
    assert marked and "x" in marked[0].text  # model B's wrong quantity breaks quantity x unit price
    images = browser.find_elements(By.CSS_SELECTOR, ".review img")
    assert images and all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
    assert_clean(browser, origin)
    screenshot(browser, "workbench-review.png")

    # order 4 has no ground truth yet: start from model A's lines, correct the first quantity, save with Ctrl+S
    browser.get(origin + f"/review/4?from={MODEL_A}")
    quantity = browser.find_element(By.CSS_SELECTOR, "#editor tbody tr input[name=quantity]")
    quantity.clear()
    quantity.send_keys("999")
    quantity.send_keys(Keys.ENTER)  # accept the line, move to the next one
    accepted = browser.find_elements(By.CSS_SELECTOR, "#editor tbody tr.accepted")
    assert len(accepted) == 1
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
    notice = WebDriverWait(browser, 10).until(lambda driver: driver.find_element(By.ID, "saved"))
    assert "Saved" in notice.text
    assert_clean(browser, origin)

    saved = sql.run(
        "SELECT qty, saved_by FROM benchmarking.ground_truth_items WHERE order_id = 4 ORDER BY invoice_index, line_no"
    )
    assert saved[0] == [999, "browser-test"] and len(saved) == expected_lines(sql)

    # the comparison page now counts order 4: model A's quantity accuracy drops below 100 %
    browser.get(origin + "/")
    assert cell(browser, "models", MODEL_A, "accuracy_orders") == "4"
    assert cell(browser, "fields", MODEL_A, "quantity") != "100.0%"
    assert (
        cell(browser, "fields", MODEL_A, "quantity") == f"{expected_rows()[MODEL_A]['field_accuracy']['quantity']:.1%}"
    )


def expected_lines(sql: pg8000.native.Connection) -> int:
    return int(
        sql.run("SELECT count(*) FROM benchmarking.invoice_items WHERE order_id = 4 AND llm = :llm", llm=MODEL_A)[0][0]
    )
