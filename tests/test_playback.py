"""The default video output plays in a real browser: `jsnet-edge video` writes a clip, a
local HTTP server on 127.0.0.1 serves it, and Debian's Chromium (driven by Playwright)
decodes and shows every frame. Hardware decoders of phones and TVs take only 4:2:0 H.264
(High profile); Chromium's own decoder is the strict, widely deployed check we can run.

Chromium comes from the system (`apt-get install chromium`); `.ci/run` installs it and sets
JSNET_EDGE_REQUIRE_BROWSER=1, so that CI fails rather than skips without it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import pytest

from conftest import run_cli, serve
from jsnet_edge.video.sample import make_sample_clip

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FRAMES, FPS = 24, 24

# Play the clip to its end; count every frame the decoder hands to the compositor.
PLAY = """async (url) => {
  const v = document.createElement('video');
  v.muted = true;
  document.body.appendChild(v);
  const failed = () =>
    new Error('media error ' + (v.error ? v.error.code + ' ' + v.error.message : ''));
  const frames = [];
  const onFrame = (now, meta) => {
    frames.push(meta.mediaTime);
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
  const ended = new Promise((ok, bad) => { v.onended = ok; v.onerror = () => bad(failed()); });
  v.src = url;
  await v.play();
  await ended;
  const q = v.getVideoPlaybackQuality();
  return {width: v.videoWidth, height: v.videoHeight, duration: v.duration,
          decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames, shown: frames.length};
}"""


@pytest.fixture()
def chromium():
    if CHROMIUM is None:
        if os.environ.get("JSNET_EDGE_REQUIRE_BROWSER"):
            pytest.fail("JSNET_EDGE_REQUIRE_BROWSER is set but no chromium is on PATH")
        pytest.skip("no Chromium on PATH (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            # No sandbox as root in CI; no background networking on a closed network.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def served(tmp_path):
    """An HTTP server on 127.0.0.1 serving `tmp_path`; yields its base URL."""
    with serve(tmp_path) as url:
        yield url


def test_the_default_output_plays_every_frame_in_chromium(chromium, served, tmp_path: Path):
    src = make_sample_clip(tmp_path / "noisy.mp4", frames=FRAMES, fps=FPS, size=(160, 96)).path
    out = tmp_path / "restored.mp4"
    run_cli("video", src, "-o", out, "--task", "denoise")
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        # 4:2:0 High profile: what hardware decoders take (not High 4:4:4 Predictive)
        assert (v.codec_context.name, v.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert v.codec_context.profile == "High" and v.frames == FRAMES
    (tmp_path / "index.html").write_text("<!doctype html><title>playback</title><body></body>")
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{served}/index.html")
    got = page.evaluate(PLAY, f"{served}/restored.mp4")
    assert not errors, errors
    assert (got["width"], got["height"]) == (160, 96), got
    assert abs(got["duration"] - FRAMES / FPS) < 0.1, got
    assert got["decoded"] == FRAMES, got  # every frame decoded ...
    assert got["shown"] >= FRAMES - got["dropped"] - 1, got  # ... and shown as it played
