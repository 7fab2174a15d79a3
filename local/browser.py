"""Headless Chromium for the workbench's browser tests and screenshots: Debian's ``chromium`` and ``chromium-driver``.

No browser can be downloaded from the internet here (Playwright's and Selenium Manager's downloads fail), so
the system packages are used: ``python -m local.browser`` (run by ``make install``) installs them with apt-get
when they are missing and we are root, like ``local.postgres`` does for the database server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

PACKAGES = ("chromium", "chromium-driver")


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def install_browser() -> tuple[str, str] | None:
    """Install Debian's packages when we may (root with apt-get); returns the paths, or None with the reason printed
    on stderr."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print("not root, or no apt-get: cannot install the browser packages here", file=sys.stderr)
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
    install = subprocess.run(
        ["apt-get", "install", "-y", "-qq", *PACKAGES], check=False, env=env, capture_output=True, text=True
    )
    if install.returncode != 0:
        print(f"apt-get install {' '.join(PACKAGES)} failed:\n{install.stderr.strip()}", file=sys.stderr)
    return find_browser()


def headless_chrome(width: int = 1400, height: int = 1000) -> Any:
    """A Selenium Chrome driver on the system Chromium, headless, with the browser console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise RuntimeError("chromium and chromedriver are not installed: run `make install` (as root) or apt-get")
    browser, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def main() -> int:
    found = find_browser() or install_browser()
    if found is None:
        print(
            f"chromium/chromedriver not found and not installed: install {' '.join(PACKAGES)} for the browser tests "
            "(they skip without it, and fail when CI is set)",
            file=sys.stderr,
        )
        return 1
    print(f"browser: {found[0]}, driver: {found[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
