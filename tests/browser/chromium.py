"""A headless Chromium from the system's packages (Debian's chromium + chromium-driver), driven by selenium: no
browser download. Each driver gets a fresh profile directory, so no state leaks between tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


class BrowserMissing(RuntimeError):
    """No system Chromium, chromedriver or selenium here."""


def _first(paths: tuple[str, ...], env: str) -> str:
    chosen = os.environ.get(env)
    for path in (chosen, *paths) if chosen else paths:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    raise BrowserMissing(f"none of {', '.join(paths)} is there (install Debian's chromium and chromium-driver)")


def start_chromium(width: int = 1280, height: int = 900):
    """A selenium WebDriver on a headless system Chromium; quit() it (the profile directory goes with it)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserMissing(f"selenium is not installed: {exc}") from None
    binary = _first(CHROMIUM_CANDIDATES, "ORDERSTREAM_CHROMIUM")
    driver_path = _first(CHROMEDRIVER_CANDIDATES, "ORDERSTREAM_CHROMEDRIVER")
    profile = tempfile.mkdtemp(prefix="orderstream-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    quit_driver = driver.quit

    def quit_and_clean() -> None:
        try:
            quit_driver()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    return driver


def full_page_screenshot(driver, path: Path, width: int | None = None) -> None:
    """The whole page (not just the window) as a PNG: the window grows to the page's height for the shot."""
    size = driver.get_window_size()
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    driver.set_window_size(width or size["width"], min(max(height + 100, 400), 4000))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
