"""The web console in a real headless Chromium, against a real `orderstream serve`, Kafka broker and pipeline.

Each test saves screenshots of the pages it visits into docs/screenshots/ (the README shows them)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from orderstream.views.registry import ALL_SPECS
from tests.browser.chromium import full_page_screenshot
from tests.browser.conftest import SCREENSHOTS
from tests.support.api_server import ApiServer, _env, _root_args

pytestmark = pytest.mark.timeout(240)


def wait_for(browser, condition, timeout: float = 30, message: str = ""):
    """What condition(browser) returns once it is truthy (a stale element counts as not yet)."""

    def attempt(driver):
        try:
            return condition(driver)
        except StaleElementReferenceException:
            return False

    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(attempt, message)


def text_of(browser, css: str) -> str:
    found = browser.find_elements(By.CSS_SELECTOR, css)
    return found[0].text.strip() if found else ""


def place(api: httpx.Client, customer: str, lines: list[tuple[str, int, int]]) -> str:
    answer = api.post(
        "/orders",
        json={
            "customer_id": customer,
            "currency": "EUR",
            "lines": [{"sku": s, "quantity": q, "unit_price_minor": p} for s, q, p in lines],
        },
    )
    assert answer.status_code == 201 and answer.json()["accepted"], answer.text
    order_id, token = answer.json()["order_id"], answer.json()["token"]
    assert api.get(f"/orders/{order_id}", params={"after": token}).status_code == 200
    return order_id


def api_status(api: httpx.Client, order_id: str) -> str:
    return api.get(f"/orders/{order_id}").json()["status"]


def wait_api_status(api: httpx.Client, order_id: str, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while api_status(api, order_id) != status:
        assert time.monotonic() < deadline, f"{order_id} never became {status}"
        time.sleep(0.2)


def no_unlabelled_controls(browser) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(el => !el.labels.length && !el.getAttribute('aria-label')).map(el => el.outerHTML)"
    )


def test_an_order_goes_placed_to_confirmed_live_is_shipped_and_delivered_and_a_stale_page_cannot_cancel(stack, browser):
    with stack.api.client() as api:
        for sku in ("SKU-CONSOLE-A", "SKU-CONSOLE-B"):
            restocked = api.post(f"/stock/{sku}/restock", json={"quantity": 100})
            assert restocked.status_code == 200, restocked.text
        stack.stop("payment")  # orders wait in PLACED until the payment service is back
        first = place(api, "c-console-1", [("SKU-CONSOLE-A", 2, 1999), ("SKU-CONSOLE-B", 1, 500)])
        second = place(api, "c-console-2", [("SKU-CONSOLE-A", 1, 1999)])

        # The list shows the order (newest first); filtering by its customer finds it too.
        browser.get(stack.api.url + "/")
        row = f'tr[data-order-id="{first}"]'
        wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, row), message="the order is not in the list")
        assert "placed" in text_of(browser, row)
        customer = browser.find_element(By.ID, "f-customer")
        customer.send_keys("c-console-1", Keys.ENTER)
        wait_for(browser, lambda b: "customer=c-console-1" in b.current_url)
        wait_for(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#orders-table tbody tr[data-order-id]")) == 1)
        assert no_unlabelled_controls(browser) == []

        # A second tab holds the other order's page, its live updates off: it goes stale.
        browser.switch_to.new_window("tab")
        browser.get(f"{stack.api.url}/console/orders/{second}")
        wait_for(browser, lambda b: text_of(b, "#order-status") == "PLACED")
        browser.find_element(By.ID, "live-toggle").click()
        wait_for(browser, lambda b: "paused" in text_of(b, "#live-state"))
        stale_tab = browser.current_window_handle
        browser.switch_to.window(browser.window_handles[0])

        # Open the first order from the list and watch it confirm without a reload.
        browser.find_element(By.CSS_SELECTOR, f"{row} a").click()
        wait_for(browser, lambda b: text_of(b, "#order-status") == "PLACED")
        wait_for(browser, lambda b: text_of(b, "#live-state") == "live", message="the event stream did not connect")
        browser.execute_script("window.sameDocument = true")
        stack.start("payment")
        wait_for(browser, lambda b: text_of(b, "#order-status") == "CONFIRMED", timeout=90, message=stack.output())
        assert browser.execute_script("return window.sameDocument === true"), "the page reloaded"
        timeline = text_of(browser, "#timeline")
        assert "OrderPlaced" in timeline and "OrderConfirmed" in timeline
        assert text_of(browser, "#payment-status") == "authorized"

        # Ship and deliver from the page; the live stream shows each step.
        wait_for(browser, lambda b: b.find_element(By.ID, "ship-button").is_enabled())
        browser.find_element(By.ID, "ship-button").click()
        wait_for(
            browser, lambda b: text_of(b, "#order-status") == "SHIPPED", message=text_of(browser, "#action-result")
        )
        wait_for(browser, lambda b: b.find_element(By.ID, "deliver-button").is_enabled())
        browser.find_element(By.ID, "deliver-button").click()
        wait_for(
            browser, lambda b: text_of(b, "#order-status") == "DELIVERED", message=text_of(browser, "#action-result")
        )
        assert "OrderShipped" in text_of(browser, "#timeline") and "OrderDelivered" in text_of(browser, "#timeline")
        assert text_of(browser, "#shipment-state") == "delivered"
        assert browser.execute_script("return window.sameDocument === true"), "the page reloaded"
        full_page_screenshot(browser, SCREENSHOTS / "order.png")

        # The stale page still shows PLACED at its old version; the order has moved on. Its cancel must not pass.
        wait_api_status(api, second, "CONFIRMED")
        browser.switch_to.window(stale_tab)
        assert text_of(browser, "#order-status") == "PLACED"
        browser.find_element(By.ID, "cancel-reason").send_keys("changed my mind")
        browser.find_element(By.ID, "cancel-button").click()
        wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#action-message[data-outcome=conflict]"))
        message = text_of(browser, "#action-message")
        assert "Conflict" in message and "version" in message and "Nothing was cancelled" in message
        assert api_status(api, second) == "CONFIRMED"
        full_page_screenshot(browser, SCREENSHOTS / "order-conflict.png")
        browser.find_element(By.ID, "reload-order").click()
        wait_for(browser, lambda b: text_of(b, "#order-status") == "CONFIRMED")
        browser.close()
        browser.switch_to.window(browser.window_handles[0])

        browser.get(stack.api.url + "/")
        wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, f'tr[data-order-id="{first}"]'))
        full_page_screenshot(browser, SCREENSHOTS / "orders.png")


def test_a_garbage_record_is_dead_lettered_shown_with_its_provenance_and_bytes_and_sent_back_after_a_confirmation(
    stack, browser
):
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config
    from orderstream.ops.dlq import read_letters

    key = f"garbage-{uuid.uuid4().hex[:8]}"
    producer = Producer(producer_config(stack.settings))
    producer.produce(stack.settings.topic("orders.commands"), key=key.encode(), value=b"\x00\x01not avro\xff")
    assert producer.flush(30) == 0

    browser.get(stack.api.url + "/console/dead-letters?topic=orders.commands.dlq")
    link = f'#letters-table tr[data-letter-id] a[href*="{stack.settings.topic("orders.commands.dlq")}"]'

    def letter_listed(b):
        if b.find_elements(By.ID, "deferred"):  # the page's data is still on its way
            return False
        rows = [r for r in b.find_elements(By.CSS_SELECTOR, "#letters-table tr[data-letter-id]") if key in r.text]
        if not rows:
            b.refresh()
        return rows

    rows = wait_for(browser, letter_listed, timeout=60, message="the garbage never reached the dead letters")
    rows[0].find_element(By.CSS_SELECTOR, "a").click()
    wait_for(browser, lambda b: b.find_elements(By.ID, "letter-detail"))
    provenance = text_of(browser, "#letter-provenance")
    assert stack.settings.topic("orders.commands") in provenance and "decode" in provenance and key in provenance
    assert "00 01 6e 6f 74 20 61 76 72 6f ff" in text_of(browser, "#letter-hex")
    assert browser.find_elements(By.CSS_SELECTOR, link)
    full_page_screenshot(browser, SCREENSHOTS / "dead-letters.png")

    letter_id = browser.find_element(By.CSS_SELECTOR, "#letters-table tr.selected").get_attribute("data-letter-id")
    browser.find_element(By.ID, "retry-button").click()
    alert = wait_for(browser, lambda b: _alert(b), message="no confirmation was asked")
    assert "back to" in alert.text and stack.settings.topic("order-service") in alert.text
    alert.accept()
    wait_for(browser, lambda b: "sent" in text_of(b, "#retry-outcome"), message=text_of(browser, "main"))

    # The order service got the record back, failed on it again: the same letter waits again, its failure counted.
    def failed_again() -> bool:
        mine = [
            x for x in read_letters(stack.settings) if f"{x.dlq_topic}:{x.dlq_partition}:{x.dlq_offset}" == letter_id
        ]
        return bool(mine) and mine[0].retry_failures >= 1 and not mine[0].retried

    deadline = time.monotonic() + 60
    while not failed_again():
        assert time.monotonic() < deadline, "the retried record never came back to the order service"
        time.sleep(1)
    assert len([x for x in read_letters(stack.settings) if x.key == key]) == 1, "a failed retry is not a second letter"
    browser.find_element(By.ID, "back-to-letter").click()
    wait_for(browser, lambda b: "failed again after 1 retry" in text_of(b, "#letter-provenance"))
    assert browser.find_elements(By.ID, "retry-button"), "a letter that failed again can be retried again"


def _alert(browser):
    try:
        return browser.switch_to.alert
    except NoAlertPresentException:
        return None


def test_pipeline_and_sales_pages_show_live_consumers_charts_and_scarce_stock(stack, browser):
    with stack.api.client() as api:
        for sku, quantity in (("SKU-CONSOLE-A", 50), ("SKU-CONSOLE-B", 50), ("SKU-CONSOLE-SCARCE", 3)):
            assert api.post(f"/stock/{sku}/restock", json={"quantity": quantity}).status_code == 200
        sold = place(api, "c-console-3", [("SKU-CONSOLE-B", 3, 750)])
        # Sales are captured money: an order books once its dispatch is accepted.
        wait_api_status(api, sold, "CONFIRMED")
        assert api.post(f"/orders/{sold}/ship", json={}).status_code == 200

    # Some load while the page watches, so its charts have something to show.
    load = subprocess.Popen(
        [sys.executable, "-m", "orderstream.cli.main", *_root_args(stack.settings), "generate", "--orders", "150",
         "--rate", "50", "--skus", "5", "--seed", "3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(stack.settings, None),
    )  # fmt: skip
    browser.get(stack.api.url + "/console/pipeline")
    wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#pipeline-table tr[data-kind=projection]"))
    names = {
        r.get_attribute("data-consumer") for r in browser.find_elements(By.CSS_SELECTOR, "#pipeline-table tbody tr")
    }
    assert {"order", "payment-orders", "shipping", "order-view", "sales-view", "stock-view"} <= names
    assert "healthy" in text_of(browser, "#broker-health")
    # Two refreshes later every view's chart has a rate.
    wait_for(
        browser, lambda b: all(s.text != "\u2013" for s in b.find_elements(By.CSS_SELECTOR, ".rate-now")), timeout=20
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, ".chart-canvas canvas")) == len(ALL_SPECS)  # one per view
    rate = '.rate-now[data-rate-for="order-view"]'
    wait_for(browser, lambda b: float(text_of(b, rate)) > 0, timeout=45, message="order-view never applied anything")
    assert load.wait(60) == 0
    time.sleep(4)  # a last refresh after the load
    full_page_screenshot(browser, SCREENSHOTS / "pipeline.png")

    browser.get(stack.api.url + "/console/sales")
    wait_for(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, ".chart-canvas canvas")) == 2)
    scarce = browser.find_element(By.XPATH, "//table[@id='stock-table']//tr[th[text()='SKU-CONSOLE-SCARCE']]")
    assert "scarce" in scarce.get_attribute("class") and "scarce" in scarce.text
    assert "SKU-CONSOLE-A" in text_of(browser, "#stock-table")
    assert "SKU-CONSOLE-B" in browser.find_element(By.ID, "sales-by-sku").get_attribute("textContent")
    assert no_unlabelled_controls(browser) == []
    full_page_screenshot(browser, SCREENSHOTS / "sales.png")


def test_at_a_phones_width_nothing_overflows_and_the_keyboard_reaches_everything(stack, browser):
    browser.set_window_size(390, 844)
    try:
        for path in ("/", "/console/pipeline", "/console/sales", "/console/dead-letters"):
            browser.get(stack.api.url + path)
            wait_for(browser, lambda b: b.execute_script("return document.readyState") == "complete")
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{path} scrolls sideways by {overflow}px at 390px"
            if path == "/":
                full_page_screenshot(browser, SCREENSHOTS / "orders-phone.png", width=390)
        # The first Tab reaches the skip link, which moves focus to the content.
        browser.get(stack.api.url + "/")
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        assert browser.switch_to.active_element.text == "Skip to content"
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        assert browser.switch_to.active_element.get_attribute("id") == "main"
    finally:
        browser.set_window_size(1280, 900)


def test_with_an_api_token_the_console_asks_once_and_keeps_it_out_of_urls(stack, browser):
    secret = f"tok-{uuid.uuid4().hex}"
    server = ApiServer(stack.settings, stack.logs / "serve-token.log", token=secret)
    try:
        frame = httpx.get(server.url + "/", timeout=30)
        assert frame.status_code == 200 and "needs-token" in frame.text and "orders-table" not in frame.text
        assert httpx.get(server.url + "/", headers={"HX-Request": "true"}, timeout=30).status_code == 401
        assert httpx.get(server.url + "/orders", timeout=30).status_code == 401

        browser.get(server.url + "/")
        dialog = wait_for(
            browser, lambda b: b.find_element(By.ID, "token-dialog").get_attribute("open") is not None and b
        )
        token_input = dialog.find_element(By.ID, "token-input")
        token_input.send_keys("wrong", Keys.ENTER)
        wait_for(browser, lambda b: "refused" in text_of(b, "#token-error"))
        token_input.clear()
        token_input.send_keys(secret, Keys.ENTER)
        wait_for(browser, lambda b: b.find_elements(By.ID, "orders-table"))
        assert browser.execute_script("return sessionStorage.getItem('orderstream.console.token')") == secret
        # Asked once: another page of the same tab loads its data without asking again.
        browser.find_element(By.LINK_TEXT, "Sales and stock").click()
        wait_for(browser, lambda b: b.find_elements(By.ID, "stock-table"))
        assert browser.find_element(By.ID, "token-dialog").get_attribute("open") is None
        assert secret not in browser.current_url
        assert all(
            secret not in name for name in browser.execute_script("return performance.getEntries().map(e => e.name)")
        )
    finally:
        browser.execute_script("sessionStorage.clear()")
        server.stop()
