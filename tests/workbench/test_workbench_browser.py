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

from invoice_pipeline.tables import db
from invoices_cli.comparison import ComparisonFilter, compare_models
from invoices_cli.workbench.server import running_workbench
from local.browser import find_browser, headless_chrome
from tests.setup_required import missing
from tests.workbench.conftest import BUCKET, MODEL_A, MODEL_B, TwoModels


@pytest.fixture(autouse=True)
def _browser_installed() -> None:
    """Each test here skips without the browser, or fails under CI (the rest of the run goes on)."""
    if find_browser() is None:
        missing("chromium and chromedriver are not installed: `python -m local.browser` (make install) installs them")


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

    # review queue: the incomplete invoice first (B missed a line of order 3), then B's doubtful line (order 2);
    # open the second with the keyboard
    browser.get(origin + "/review")
    queue = browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    assert [row.get_attribute("data-order") for row in queue[:2]] == ["3", "2"]
    ActionChains(browser).send_keys("j").perform()
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda driver: driver.current_url == origin + "/review/2")
    marked = browser.find_elements(By.CSS_SELECTOR, f".model-lines[data-llm='{MODEL_B}'] tr.bad")
    assert marked and "x" in marked[0].text  # model B's wrong quantity breaks quantity x unit price
    assert "doubtful" in marked[0].text and "failed: arithmetic" in marked[0].text
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


def test_the_review_page_as_a_reviewer_uses_it(browser: Any, workbench_url: str, sql: pg8000.native.Connection) -> None:
    """The editor marks what the checks found and re-checks each line as it is typed; Esc keeps the line selected;
    no single key saves; leaving with unsaved edits asks first; a bad number marks its cell; a restore says which
    version it restored, after a preview; the line's box shows on the image; the comparison fits 1,400 px."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.wait import WebDriverWait

    parts = urlsplit(workbench_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    # where model B read its wrong line (as an extractor with geometry stores it)
    sql.run(
        "UPDATE benchmarking.invoice_items SET page = 1, bbox = CAST('[0.1, 0.2, 0.9, 0.25]' AS jsonb)"
        " WHERE order_id = 2 AND llm = :llm AND invoice_index = 0 AND line_no = 1",
        llm=MODEL_B,
    )
    browser.get(workbench_url)

    # the comparison fits a 1,400 px window: no sideways scrolling, the last column visible
    card = browser.find_element(By.CSS_SELECTOR, "section.card:has(#models)")
    assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", card)
    reliability_before = cell(browser, "trust", MODEL_A, "reliability_verified")

    # the editor starts from B's lines: its doubtful line is marked in the editor, cells and all
    browser.get(origin + f"/review/2?from={MODEL_B}")
    rows = browser.find_elements(By.CSS_SELECTOR, "#editor tbody tr")
    first = rows[0]
    assert "trust-doubtful" in first.get_attribute("class") and "doubtful" in first.text
    assert "arithmetic" in first.find_element(By.CSS_SELECTOR, ".check").text
    assert "marked" in first.find_element(By.NAME, "line_total").get_attribute("class")
    # ... and its box on the invoice image when the line is selected
    first.find_element(By.NAME, "description").click()
    box = browser.find_element(By.CSS_SELECTOR, ".page[data-invoice='0'][data-page='1'] .bbox")
    assert box.is_displayed() and box.value_of_css_property("left").endswith("px")
    assert browser.execute_script("return arguments[0].style.left", box) == "10%"

    def truth_of_order_2() -> list[list[Any]]:
        return sql.run(
            "SELECT invoice_index, line_no, item_name, qty, unit_price, net_price FROM benchmarking.ground_truth_items"
            " WHERE order_id = 2 ORDER BY 1, 2"
        )

    truth_before = truth_of_order_2()
    # re-checked as it is typed: the right quantity clears the mark, "2,5" marks the cell
    truth_quantity = sql.run(
        "SELECT qty::text FROM benchmarking.ground_truth_items WHERE order_id = 2 AND invoice_index = 0 AND line_no = 1"
    )[0][0]
    quantity = first.find_element(By.NAME, "quantity")
    quantity.clear()
    quantity.send_keys(truth_quantity)
    assert "bad" not in (first.get_attribute("class") or "")
    assert "marked" not in first.find_element(By.NAME, "line_total").get_attribute("class")
    assert first.find_element(By.CSS_SELECTOR, ".check .why").text == ""
    quantity.clear()
    quantity.send_keys("2,5")
    assert "marked" in quantity.get_attribute("class") and "plain number" in quantity.get_attribute("title")
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
    assert browser.current_url == origin + f"/review/2?from={MODEL_B}"  # not sent: the cell keeps the focus
    assert browser.switch_to.active_element == quantity

    # without the page's script the server says the same, on the page, with the typed lines kept
    browser.execute_script("document.getElementById('editor-form').submit()")
    WebDriverWait(browser, 10).until(lambda driver: driver.find_elements(By.ID, "form-error"))
    assert "line 1 quantity: '2,5' is not a number" in browser.find_element(By.ID, "form-error").text
    kept = browser.find_element(By.CSS_SELECTOR, "#editor tbody tr input[name=quantity]")
    assert kept.get_attribute("value") == "2,5" and "marked" in kept.get_attribute("class")
    assert truth_of_order_2() == truth_before  # nothing written
    logged = [entry["message"] for entry in browser.get_log("browser")]  # the answer's 400, and nothing else
    assert len(logged) == 1 and "/review/2/save" in logged[0] and "400" in logged[0]

    # Esc leaves the cell but keeps the line: x deletes it; a bare s saves nothing
    browser.get(origin + f"/review/2?from={MODEL_B}")
    lines = len(browser.find_elements(By.CSS_SELECTOR, "#editor tbody tr"))
    second = browser.find_elements(By.CSS_SELECTOR, "#editor tbody tr")[1]
    second_text = second.find_element(By.NAME, "description").get_attribute("value")
    second.find_element(By.NAME, "description").click()
    ActionChains(browser).send_keys(Keys.ESCAPE).send_keys("x").perform()
    left = browser.find_elements(By.CSS_SELECTOR, "#editor tbody tr input[name=description]")
    assert len(left) == lines - 1 and second_text not in [field.get_attribute("value") for field in left]
    ActionChains(browser).send_keys(Keys.ESCAPE).send_keys("s").perform()
    assert not browser.find_elements(By.ID, "saved") and browser.current_url.endswith(f"from={MODEL_B}")

    # n with unsaved edits asks first; staying keeps the edits
    ActionChains(browser).send_keys(Keys.ESCAPE).send_keys("n").perform()
    WebDriverWait(browser, 5).until(lambda driver: driver.switch_to.alert)
    alert = browser.switch_to.alert
    assert "unsaved" in alert.text
    alert.dismiss()
    assert browser.current_url.endswith(f"/review/2?from={MODEL_B}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#editor tbody tr")) == lines - 1

    # save twice, then restore the first: a preview says what differs, the notice says which version came back
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
    WebDriverWait(browser, 10).until(lambda driver: driver.find_elements(By.ID, "saved"))
    version = browser.find_element(By.CSS_SELECTOR, "#versions tbody tr")
    version_id = version.get_attribute("data-version")
    summary = version.find_element(By.CSS_SELECTOR, "details.preview summary")
    assert "differ" in summary.text  # the version replaced had the line deleted above
    summary.click()
    assert len(version.find_elements(By.CSS_SELECTOR, "details.preview table tr")) == lines
    version.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    notice = WebDriverWait(browser, 10).until(lambda driver: driver.find_element(By.ID, "saved"))
    assert f"Restored version {version_id}" in notice.text and f"{lines} line(s)" in notice.text
    assert_clean(browser, origin)

    # a saved correction moves the calibration: A's verified lines of order 4 are no longer all right
    browser.get(origin + f"/review/4?from={MODEL_A}")
    quantity = browser.find_element(By.CSS_SELECTOR, "#editor tbody tr input[name=quantity]")
    quantity.clear()
    quantity.send_keys("999")
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
    WebDriverWait(browser, 10).until(lambda driver: driver.find_elements(By.ID, "saved"))
    browser.get(origin + "/")
    after = cell(browser, "trust", MODEL_A, "reliability_verified")
    assert after != reliability_before and after.startswith(
        f"{expected_rows()[MODEL_A]['trust_reliability']['verified']['share_right']:.1%}"
    )
