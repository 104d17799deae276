"""The web console in headless Chromium against an in-process gateway with real engines.

A fake microphone plays ``zh_dev_06_funasr_asr_example_zh.wav`` (Chromium loops it); the
page captures it through its AudioWorklet, streams 16 kHz PCM over SpeechTranscriber and
must show the file's text. It also synthesizes a sentence and must actually play it, and
it gets its token from the gateway's CreateToken, signed in the page. Screenshots go to
``artifacts/console.png`` (desktop) and ``artifacts/console-375.png`` (375 px wide).

Skips only when Chromium is missing outside CI (``scripts/install-browser`` installs it);
with ``CI`` set, a missing browser fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from evaldata import ROOT, cer, load_wav, reference

EVAL_FILE = "zh_dev_06_funasr_asr_example_zh.wav"
ARTIFACTS = ROOT / "artifacts"
AK_ID, AK_SECRET, APPKEY = "console-test-id", "console-test-secret", "console-test-appkey"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = "chromium and chromedriver are not installed: run scripts/install-browser"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _mic_wav(path: Path) -> Path:
    """The eval file with 0.3 s of silence before and 2 s after, so that each loop of the
    fake microphone is its own sentence (the segmenter breaks on 800 ms of silence)."""
    speech = load_wav(EVAL_FILE)
    pcm = np.concatenate([np.zeros(4800, np.float32), speech, np.zeros(32000, np.float32)])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def _wait(driver: WebDriver, what: str, condition: Callable[[], Any], timeout: float) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with the page's errors."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            errors = driver.execute_script(
                "return [...document.querySelectorAll('.error:not([hidden]), .message')]"
                ".map(e => e.id + ': ' + e.textContent.trim())"
            )
            raise AssertionError(f"timed out waiting for {what}; page says: {errors}")
        time.sleep(0.2)


def _text(driver: WebDriver, css: str) -> str:
    return str(driver.execute_script(f"return document.querySelector({css!r})?.textContent ?? ''"))


def _attr(driver: WebDriver, element_id: str, name: str) -> str:
    return str(driver.find_element(By.ID, element_id).get_attribute(name) or "")


def _screenshot(driver: WebDriver, width: int, path: Path) -> None:
    """A full-page screenshot with the viewport ``width`` CSS pixels wide."""
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.execute_script("document.activeElement?.blur(); window.scrollTo(0, 0)")
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics["height"] = min(max(height, 900), 4000)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.save_screenshot(str(path))


def _chrome(mic: Path | None, profile: Path) -> WebDriver:
    chromium, chromedriver = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    if mic is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={mic}")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    return driver


def _open_console(driver: WebDriver, url: str) -> None:
    driver.get(url)
    _wait(driver, "the page script", lambda: _attr(driver, "gateway-status", "data-state"), 10)
    _wait(
        driver,
        "gateway ready and voices",
        lambda: driver.execute_script(
            "return document.querySelectorAll('#tts-voice option').length"
        ),
        15,
    )


def _console_errors(driver: WebDriver) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE" and "favicon" not in entry["message"]
    ]


def _drive(url: str, mic: Path, profile: Path) -> dict[str, Any]:
    driver = _chrome(mic, profile)
    found: dict[str, Any] = {}
    try:
        _open_console(driver, url)

        # Token: CreateToken signed in the page (the gateway checks the signature).
        driver.find_element(By.CSS_SELECTOR, ".createtoken summary").click()
        driver.find_element(By.ID, "akid").send_keys(AK_ID)
        driver.find_element(By.ID, "aksecret").send_keys(AK_SECRET)
        driver.find_element(By.ID, "createtoken").click()
        _wait(driver, "CreateToken", lambda: "Got a token" in _text(driver, "#access-message"), 10)
        found["token"] = driver.find_element(By.ID, "token").get_attribute("value")
        appkey = driver.find_element(By.ID, "appkey")
        appkey.clear()
        appkey.send_keys(APPKEY)

        # Live transcription from the fake microphone.
        driver.find_element(By.ID, "live-start").click()
        _wait(driver, "listening", lambda: _attr(driver, "live", "data-state") == "listening", 15)
        _wait(driver, "a finished sentence", lambda: _text(driver, "#live-sentences li"), 40)
        driver.find_element(By.ID, "live-stop").click()
        _wait(
            driver,
            "TranscriptionCompleted",
            lambda: _attr(driver, "live", "data-state") in ("done", "failed"),
            30,
        )
        found["live_state"] = _attr(driver, "live", "data-state")
        found["sentence"] = _text(driver, "#live-sentences li .sentence-text")
        found["sentence_time"] = _text(driver, "#live-sentences li .sentence-time")

        # Synthesis: streamed PCM must actually play, subtitles must appear.
        text = driver.find_element(By.ID, "tts-text")
        text.clear()
        text.send_keys("你好，欢迎使用语音合成。")
        driver.find_element(By.ID, "tts-start").click()
        found["played"] = int(
            _wait(
                driver,
                "played audio",
                lambda: int(_attr(driver, "tts-state", "data-played-samples") or 0),
                40,
            )
        )
        _wait(
            driver,
            "synthesis done",
            lambda: _attr(driver, "tts", "data-state") in ("done", "failed"),
            30,
        )
        found["tts_state"] = _attr(driver, "tts", "data-state")
        found["words"] = driver.execute_script(
            "return document.querySelectorAll('#tts-subtitles .word').length"
        )
        found["download"] = _attr(driver, "tts-download", "href")

        ARTIFACTS.mkdir(exist_ok=True)
        _screenshot(driver, 1280, ARTIFACTS / "console.png")
        _screenshot(driver, 375, ARTIFACTS / "console-375.png")
        found["overflow_375"] = driver.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth"
        )
        found["console_errors"] = _console_errors(driver)
    finally:
        driver.quit()
    return found


@pytest.mark.timeout(90)
async def test_console_live_transcription_and_synthesis(gateway: Any, tmp_path: Path) -> None:
    _browser_paths()  # skip or fail before loading the engines
    gw = await gateway(engines="real", access_keys={AK_ID: AK_SECRET}, appkey=[APPKEY])
    mic = _mic_wav(tmp_path / "mic.wav")
    found = await asyncio.to_thread(_drive, gw.http_url + "/", mic, tmp_path / "profile")

    assert re.fullmatch(r"[0-9a-f]{32}", found["token"])
    assert found["live_state"] == "done"
    assert cer(reference(EVAL_FILE), found["sentence"]) <= 0.3, found["sentence"]
    assert re.fullmatch(r"\d+:\d\d\.\d – \d+:\d\d\.\d", found["sentence_time"])
    assert found["played"] > 0
    assert found["tts_state"] == "done"
    assert found["words"] > 0
    assert found["download"].startswith("blob:")
    assert not found["overflow_375"]
    assert not found["console_errors"]


def _stereo_48k_wav(path: Path) -> Path:
    """The eval file as 48 kHz stereo, so the page must resample and downmix it."""
    import soxr

    speech = soxr.resample(load_wav(EVAL_FILE), 16000, 48000)
    pcm = (np.clip(np.stack([speech, 0.8 * speech], axis=1), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(pcm.tobytes())
    return path


def _drive_dev(url: str, audio_file: Path, profile: Path) -> dict[str, Any]:
    driver = _chrome(None, profile)
    found: dict[str, Any] = {}
    try:
        _open_console(driver, url)
        # "Use dev token": CreateToken on a dev-mode gateway, appkey "default".
        driver.find_element(By.ID, "use-dev").click()
        _wait(driver, "dev token", lambda: "Got a token" in _text(driver, "#access-message"), 10)
        found["token"] = driver.find_element(By.ID, "token").get_attribute("value")
        found["appkey"] = driver.find_element(By.ID, "appkey").get_attribute("value")

        # File transcription: decodeAudioData → 16 kHz mono → PCM frames.
        driver.find_element(By.ID, "file-input").send_keys(str(audio_file))
        _wait(
            driver,
            "file transcription",
            lambda: _attr(driver, "file", "data-state") in ("done", "failed"),
            40,
        )
        found["file_state"] = _attr(driver, "file", "data-state")
        found["file_sentence"] = _text(driver, "#file-sentences li .sentence-text")

        # A TaskFailed shows its NLS status code: an unknown voice is 40000003.
        driver.execute_script(
            "const s = document.getElementById('tts-voice');"
            "s.add(new Option('no-such-voice', 'no-such-voice')); s.value = 'no-such-voice';"
        )
        driver.find_element(By.ID, "tts-start").click()
        _wait(driver, "TaskFailed", lambda: _attr(driver, "tts", "data-state") == "failed", 15)
        found["error_code"] = _text(driver, "#tts-error .error-code")
        found["error_text"] = _text(driver, "#tts-error .error-text")
        found["console_errors"] = _console_errors(driver)
    finally:
        driver.quit()
    return found


@pytest.mark.timeout(90)
async def test_console_dev_token_file_transcription_and_errors(
    gateway: Any, tmp_path: Path
) -> None:
    _browser_paths()
    gw = await gateway(engines="real")  # 127.0.0.1 without credentials: dev mode
    audio = _stereo_48k_wav(tmp_path / "speech-48k-stereo.wav")
    found = await asyncio.to_thread(_drive_dev, gw.http_url + "/", audio, tmp_path / "profile")

    assert re.fullmatch(r"[0-9a-f]{32}", found["token"])
    assert found["appkey"] == "default"
    assert found["file_state"] == "done"
    assert cer(reference(EVAL_FILE), found["file_sentence"]) <= 0.3, found["file_sentence"]
    assert found["error_code"] == "40000003"
    assert "no-such-voice" in found["error_text"]
    assert not found["console_errors"]
