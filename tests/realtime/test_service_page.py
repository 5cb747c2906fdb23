"""The service's page in a real headless browser (Debian's chromium through selenium): upload
the demo song, wait for its stems, press play, mute a stem, and read the player's own state
(``window.livestemsPlayer``): the three others play at their gains, the muted one at zero. And
``/docs`` and ``/redoc`` in a browser that can reach no other host: they render the API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
from livestems.realtime.service.app import ServiceConfig  # noqa: E402
from livestems.realtime.service.screenshot import (  # noqa: E402
    background_server,
    chromium,
    chromium_missing,
    demo_file,
    play_a_song,
)

pytestmark = pytest.mark.slow


def _state(driver) -> dict:  # type: ignore[no-untyped-def]
    return driver.execute_script("return JSON.parse(JSON.stringify(window.livestemsPlayer))")


def test_play_the_demo_and_mute_a_stem(tmp_path: Path) -> None:
    missing = chromium_missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    config = ServiceConfig(data=tmp_path / "serve", port=0, workers=1)
    with background_server(config) as url:
        driver = chromium(390, 844)  # a phone's width
        try:
            play_a_song(driver, url, demo_file(tmp_path))
            state = _state(driver)
            assert state["playing"] and state["contextState"] == "running", state
            assert [stem["name"] for stem in state["stems"]] == ["vocals", "drums", "bass", "other"]
            # a fader moved, then the drums muted with the button a user presses
            fader = driver.find_elements(By.CSS_SELECTOR, ".strip .fader")[2]
            driver.execute_script(
                "arguments[0].value = 0.5; arguments[0].dispatchEvent(new Event('input'))", fader
            )
            driver.find_elements(By.CSS_SELECTOR, ".strip .mute")[1].click()
            expected = {"vocals": 1.0, "drums": 0.0, "bass": 0.5, "other": 1.0}

            def settled(d) -> bool:  # type: ignore[no-untyped-def]
                stems = _state(d)["stems"]
                return all(abs(s["effectiveGain"] - expected[s["name"]]) < 1e-3 for s in stems)

            WebDriverWait(driver, 5, 0.05).until(settled)
            state = _state(driver)
            muted = [stem for stem in state["stems"] if stem["muted"]]
            assert [stem["name"] for stem in muted] == ["drums"]
            assert all(stem["playing"] for stem in state["stems"])
            position = state["position"]
            WebDriverWait(driver, 5, 0.1).until(lambda d: _state(d)["position"] > position + 0.3)
            # the window's keys: 1 mutes vocals, Shift+1 solos it (others go to zero)
            body = driver.find_element(By.TAG_NAME, "body")
            body.send_keys("1")
            WebDriverWait(driver, 5, 0.05).until(
                lambda d: _state(d)["stems"][0]["effectiveGain"] < 1e-3
            )
            body.send_keys("1")
            body.send_keys(Keys.SHIFT, "4")
            expected = {"vocals": 0.0, "drums": 0.0, "bass": 0.0, "other": 1.0}
            WebDriverWait(driver, 5, 0.05).until(settled)
            body.send_keys(Keys.SPACE)
            WebDriverWait(driver, 5, 0.05).until(lambda d: not _state(d)["playing"])
            # the page shows a bad upload's sentence
            bad = tmp_path / "notes.txt"
            bad.write_text("not a song")
            chooser = driver.find_element(By.ID, "file")
            driver.execute_script("arguments[0].hidden = false;", chooser)
            chooser.send_keys(str(bad))
            WebDriverWait(driver, 10, 0.1).until(
                lambda d: "is not a file livestems reads" in d.find_element(By.ID, "error").text
            )
        finally:
            driver.quit()


#: Every host name but the server's fails to resolve: the browser is offline, as on a
#: rehearsal-room network with no internet, yet reaches the service on 127.0.0.1.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_the_api_docs_render_offline(tmp_path: Path) -> None:
    missing = chromium_missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    config = ServiceConfig(data=tmp_path / "serve", port=0, workers=1, token="s3cret")
    with background_server(config) as url:
        driver = chromium(1280, 900, OFFLINE)
        try:
            driver.get(url + "/docs")
            # Swagger UI: one block per operation, the upload among them, no token asked
            WebDriverWait(driver, 15, 0.1).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 8
            )
            paths = {
                element.text.replace("\u200b", "")
                for element in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
            }
            assert "/api/separations" in paths and "/api/separations/{job_id}" in paths, paths
            assert driver.find_elements(By.CSS_SELECTOR, ".opblock-post")
            assert not driver.find_elements(By.CSS_SELECTOR, ".errors-wrapper"), driver.page_source
            _only_this_server(driver, url)
            _try_it_out_with_the_token(driver, "s3cret")
            # ReDoc: it shows the operations. Its "powered by" logo is the one file it asks
            # another host for (ReDoc's code, no option turns it off): offline, its onError
            # handler takes the image out, and nothing else is missing.
            driver.get(url + "/redoc")
            WebDriverWait(driver, 15, 0.1).until(
                lambda d: (
                    "Upload a song" in d.find_element(By.TAG_NAME, "body").text
                    and not d.find_elements(By.CSS_SELECTOR, "img[alt='redocly logo']")
                )
            )
            _only_this_server(driver, url, allowed=frozenset({REDOC_LOGO}))
            # and the browser is offline indeed: FastAPI's own /docs would have found no script
            reached = driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "fetch(arguments[0], {mode: 'no-cors'}).then(() => done(true), () => done(false));",
                "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
            )
            assert reached is False
        finally:
            driver.quit()


def _try_it_out_with_the_token(driver: Any, token: str) -> None:
    """Authorize with the token, then "Try it out" on GET /api/limits: the server answers 200
    (without the token it would be 401)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15, 0.1)
    driver.find_element(By.CSS_SELECTOR, ".btn.authorize").click()
    field = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".auth-container input"))
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .authorize").click()
    driver.find_element(By.CSS_SELECTOR, ".btn-done").click()
    block = driver.find_element(By.CSS_SELECTOR, "#operations-default-limits_api_limits_get")
    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(lambda d: block.find_element(By.CSS_SELECTOR, ".try-out__btn")).click()
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    status = wait.until(
        lambda d: block.find_element(
            By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"
        )
    )
    assert status.text.strip().startswith("200"), block.text


def _only_this_server(driver: Any, url: str, allowed: frozenset[str] = frozenset()) -> None:
    """Everything the page asked for came from the service, but ``allowed`` (a request that
    failed is listed too)."""
    loaded = driver.execute_script(
        "return [location.href]"
        ".concat(performance.getEntriesByType('resource').map(entry => entry.name))"
    )
    assert len(loaded) >= 3, loaded
    assert all(name.startswith(url + "/") or name in allowed for name in loaded), loaded
