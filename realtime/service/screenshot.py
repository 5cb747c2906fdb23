"""Screenshots of the service's page in a real browser, at a phone's width and a desk's:

    python -m livestems.realtime.service.screenshot -o realtime/service/screenshots

Starts the service (uvicorn in a thread of this process, its workers in their own processes)
on a free loopback port with a data folder of its own, opens Debian's chromium (packages
``chromium`` and ``chromium-driver``; ``setup.sh --dev`` installs them) headless through
selenium, uploads the bundled demo song (else a generated one), waits for its stems, plays them
with one stem muted, and saves ``page-phone.png`` and ``page-desktop.png``.

Thread contract: the main thread drives the browser; uvicorn's event loop runs on a thread of
its own (``background_server``), which also starts the worker pool (``workers.py``). The
browser test uses ``chromium`` and ``background_server`` too, so the two start things one way.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import soundfile as sf

from ..io.generated_song import generated_song
from ..runtime.catalog import bundled_demo_song
from .app import ServiceConfig, create_app

__all__ = ["SIZES", "background_server", "chromium", "chromium_missing", "play_a_song"]

#: name -> (width, height) in CSS pixels: a phone held upright, and a laptop.
SIZES = {"phone": (390, 844), "desktop": (1280, 900)}
_BROWSERS = ("chromium", "chromium-browser", "google-chrome")
_DRIVERS = ("chromedriver",)


def chromium_missing() -> str | None:
    """Why the browser cannot run here (one sentence), or ``None`` when it can."""
    if not any(shutil.which(name) for name in _BROWSERS):
        return "chromium is not installed (Debian packages chromium and chromium-driver)."
    if not any(shutil.which(name) for name in _DRIVERS):
        return "chromedriver is not installed (Debian package chromium-driver)."
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the 'dev' extra brings it)."
    return None


def chromium(width: int, height: int, *arguments: str) -> Any:
    """A headless chromium through selenium, ``width`` x ``height`` CSS pixels of page.

    ``arguments``: more of chromium's command-line switches (a test's ``--host-resolver-rules``).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    browser = next(shutil.which(name) for name in _BROWSERS if shutil.which(name))
    options.binary_location = str(browser)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # a container's root has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",  # the AudioContext runs; nothing comes out of a speaker
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        *arguments,
    ):
        options.add_argument(argument)
    driver_path = next(shutil.which(name) for name in _DRIVERS if shutil.which(name))
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    # --window-size sizes the window; the viewport is what a page lays itself out in.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 640},
    )
    return driver


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def background_server(config: ServiceConfig) -> Iterator[str]:
    """The service on a thread of this process until the block ends; yields its URL."""
    import uvicorn

    port = config.port or _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), host=config.host, port=port, log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )  # fmt: skip
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://{config.host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def demo_file(folder: Path) -> Path:
    """The bundled demo song, else 20 s of the generated song written into ``folder``."""
    demo = bundled_demo_song()
    if demo is not None:
        return demo
    path = folder / "generated song.wav"
    sf.write(path, generated_song(20), 44100, subtype="PCM_16")
    return path


def play_a_song(driver: Any, url: str, song: Path, timeout_s: float = 180.0) -> None:
    """Open the page, upload ``song``, wait for its stems, open the player and press play."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/")
    chooser = driver.find_element(By.ID, "file")
    driver.execute_script("arguments[0].hidden = false;", chooser)  # as a user's click would
    chooser.send_keys(str(song))
    driver.execute_script("arguments[0].hidden = true;", chooser)
    WebDriverWait(driver, timeout_s, 0.2).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#job-list li.done button.open")
    )
    driver.find_element(By.CSS_SELECTOR, "#job-list li.done button.open").click()
    WebDriverWait(driver, 60, 0.2).until(
        lambda d: d.execute_script("return window.livestemsPlayer.stems.length") > 0
    )
    driver.find_element(By.ID, "play").click()
    WebDriverWait(driver, 10, 0.1).until(
        lambda d: d.execute_script("return window.livestemsPlayer.playing")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default="realtime/service/screenshots", type=Path)
    args = parser.parse_args(argv)
    missing = chromium_missing()
    if missing:
        parser.exit(1, f"livestems: {missing}\n")
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        song = demo_file(Path(folder))
        config = ServiceConfig(data=Path(folder) / "serve", port=0, workers=1)
        with background_server(config) as url:
            for name, (width, height) in SIZES.items():
                driver = chromium(width, height)
                try:
                    play_a_song(driver, url, song)
                    # drums muted, so the picture shows a mute
                    driver.execute_script("document.querySelectorAll('.strip .mute')[1].click()")
                    time.sleep(1.5)
                    path = args.output / f"page-{name}.png"
                    driver.save_screenshot(str(path))
                    print(path)
                finally:
                    driver.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
