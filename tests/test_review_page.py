"""The review page (`GET /`): served by the app, and driven in a real browser.

Browser tests run Debian's Chromium (/usr/bin/chromium) headless through Playwright, against the
real app served by uvicorn on a free 127.0.0.1 port in a thread. They upload signed, watermarked,
tampered and unreadable files and check what a reviewer reads on the page.

One file of about 400 lines: the browser, the server in a thread and the signed files are
fixtures every test shares; split, each half would import them from the other.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from trustframe import media
from trustframe.service.http import create_app
from trustframe.settings import Settings, load_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "review-page.png"
STATIC = Path(__file__).resolve().parents[1] / "service" / "static"
SERVICE_ENV = ("API_KEY", "CORS_ORIGINS", "UPLOAD_MAX_BYTES", "PUBLIC_URL")

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at "
                                    "/usr/bin/chromium (apt-get install -y chromium)")


# ---------------------------------------------------------------------------------------------
# Served by the app (no browser needed)


@pytest.fixture
def plain_client(home, monkeypatch) -> TestClient:
    for name in SERVICE_ENV:
        monkeypatch.delenv(f"TRUSTFRAME_{name}", raising=False)
    return TestClient(create_app(load_settings(api_key="s3cret")), raise_server_exceptions=False)


def test_page_and_its_files_are_served_without_a_key(plain_client):
    r = plain_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert 'src="static/review.js"' in r.text and 'href="static/review.css"' in r.text
    for name, ctype in (("review.js", "text/javascript"), ("review.css", "text/css")):
        r = plain_client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype), name
        assert r.headers["x-content-type-options"] == "nosniff"
    for path in ("/static/index.htm", "/static/nothing.js", "/static/..%2Fhttp.py", "/static/"):
        r = plain_client.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", path
    assert plain_client.post("/v1/audit", files={"file": ("a.png", b"x")}).status_code == 401
    assert not {"/", "/static/{name}"} & plain_client.get("/openapi.json").json()["paths"].keys()


def test_page_works_offline():
    """Nothing is loaded from another origin (no CDN): the only absolute URL is the SVG namespace."""
    for f in STATIC.iterdir():
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"')]*", f.read_text()))
        assert urls <= {"http://www.w3.org/2000/svg"}, (f.name, urls)


# ---------------------------------------------------------------------------------------------
# Media and a server


def png_with_text_chunk(data: bytes) -> bytes:
    """A PNG with a tEXt chunk inserted right after IHDR: any C2PA data hash over it breaks."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    ihdr_end = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
    body = b"tEXt" + b"Comment\x00edited after signing"
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def picture(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth, colourful picture with a little noise: something worth a thumbnail."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([200 * x / width + 40, 160 * y / height + 50, 120 + 80 * np.sin((x + y) / 17)], -1)
    img[30:70, 50:100] = (235, 190, 40)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)[None]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[Settings, dict[str, Path], dict]]:
    """(settings, media, facts) under one data directory shared by this module's browser tests."""
    from trustframe.provenance.keys import init_keys
    from trustframe.provenance.signing import sign_file
    from trustframe.service.protect import protect_file

    d = tmp_path_factory.mktemp("review")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRUSTFRAME_HOME", str(d / "home"))
        for name in SERVICE_ENV:
            mp.delenv(f"TRUSTFRAME_{name}", raising=False)
        s = load_settings()
        init_keys(s)
        src = media.write(picture(), d / "original.png")
        files = {"generated.png": sign_file(src, d / "generated.png", settings=s).path}
        protected = protect_file(src, d / "protected.png", source_type="trainedAlgorithmicMedia", settings=s)
        files["protected.png"] = protected.path
        files["altered.png"] = d / "altered.png"
        files["altered.png"].write_bytes(png_with_text_chunk(protected.path.read_bytes()))
        photo = sign_file(src, d / "photo-signed.png", source_type="digitalCapture", settings=s).path
        files["photo-edited.png"] = d / "photo-edited.png"
        files["photo-edited.png"].write_bytes(png_with_text_chunk(photo.read_bytes()))
        files["notes.png"] = d / "notes.png"
        files["notes.png"].write_bytes(b"meeting notes, not a picture\n" * 20)
        clip = media.write(media.Frames(np.repeat(picture(96, 128), 12, 0), fps=12.0), d / "clip-src.mp4")
        files["clip.mp4"] = sign_file(clip, d / "clip.mp4", settings=s).path
        yield s, files, {"payload": protected.payload}


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free port, in a thread; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(30_000)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert errors == [], errors  # no uncaught JavaScript error on the page


def wait_for_cards(page, n: int) -> None:
    page.wait_for_function(
        """n => { const c = [...document.querySelectorAll('li.card')];
                  return c.length === n && c.every(e => ['done', 'failed'].includes(e.dataset.state)); }""",
        arg=n, timeout=45_000)


def card(page, name: str):
    return page.locator("li.card").filter(has=page.get_by_role("heading", name=name, exact=True))


# ---------------------------------------------------------------------------------------------
# In the browser


@pytest.mark.slow
@needs_chromium
def test_review_page_shows_each_verdict(world, page, monkeypatch):
    settings, files, facts = world
    from trustframe.service.http import audit_routes

    # The page uploads one file at a time: the server never sees two audits at once.
    running, most, calls = [0], [0], []
    real_audit = audit_routes.audit

    def counting_audit(*args, **kw):
        running[0] += 1
        most[0] = max(most[0], running[0])
        calls.append(kw.get("filename"))
        try:
            return real_audit(*args, **kw)
        finally:
            running[0] -= 1

    monkeypatch.setattr(audit_routes, "audit", counting_audit)
    order = ["generated.png", "protected.png", "altered.png", "photo-edited.png", "notes.png", "clip.mp4"]
    with serve(settings) as url:
        page.goto(url)
        assert page.title() == "TrustFrame review"
        page.get_by_label("Choose files").set_input_files([str(files[n]) for n in order])
        wait_for_cards(page, len(order))
        assert calls == order and most[0] == 1

        generated = card(page, "generated.png")
        assert generated.get_attribute("data-label") == "ai-generated"
        assert generated.locator(".label").inner_text() == "AI-generated"
        text = generated.inner_text()
        for expected in ("Content Credentials from a trusted signer say this was made with generative AI",
                         "Trusted: the signature is valid and the signer is on the trust list",
                         "TrustFrame Signer", "TrustFrame local", "Made by a generative AI model",
                         "created (c2pa.created)", "Not detected", "C2PA manifest (embedded) is trusted"):
            assert expected in text, expected
        assert generated.locator(".thumbs img").evaluate("img => img.complete && img.naturalWidth") == 160

        protected = card(page, "protected.png")
        assert protected.locator(".label").inner_text() == "AI-generated"
        wm = protected.locator("section.block", has_text="Invisible watermark").inner_text()
        assert "Detected" in wm and facts["payload"] in wm and "10⁻" in wm
        assert "original.png" in protected.inner_text()  # the ingredient

        altered = card(page, "altered.png")
        assert altered.locator(".label").inner_text() == "Tampered"
        assert "This file was altered after signing." in altered.locator(".altered").inner_text()
        in_file = altered.locator(".compare .in-file").inner_text()
        recovered = altered.locator(".compare .recovered").inner_text()
        assert "assertion.dataHash.mismatch" in in_file and "changed after signing" in in_file
        assert "Trusted" in recovered and "Yes, through the watermark" in recovered
        assert facts["payload"] in recovered

        photo = card(page, "photo-edited.png")
        assert photo.locator(".label").inner_text() == "Tampered"
        assert photo.locator(".altered").count() == 0  # no watermark, so nothing to compare with
        text = photo.inner_text()
        assert "assertion.dataHash.mismatch" in text and "Captured by a camera" in text
        assert "changed after it was signed" in text

        notes = card(page, "notes.png")
        assert notes.get_attribute("data-label") == "error"
        assert notes.locator(".label").inner_text() == "Could not check"
        assert "notes.png: not an image or video we can read" in notes.inner_text()
        assert "No preview" in notes.locator(".thumbs").inner_text()

        clip = card(page, "clip.mp4")
        assert clip.locator(".label").inner_text() == "AI-generated"
        # Thumbnails are drawn after the verdict arrives (each waits for its frame to decode), and
        # each was really drawn: no canvas is blank.
        thumbs = clip.locator(".thumbs canvas")
        thumbs.nth(3).wait_for(timeout=60_000)
        assert thumbs.count() == 4
        for c in thumbs.all():
            assert c.evaluate("c => c.getContext('2d').getImageData(0, 0, c.width, c.height)"
                              ".data.some((v, i) => i % 4 < 3 && v > 0)")

        # Screen readers hear each result through the aria-live announcer.
        assert page.locator("#announcer").get_attribute("aria-live") == "polite"
        page.wait_for_function("document.querySelector('#announcer').textContent.includes('6 of 6 files')")
        for c in page.locator("li.card").all():
            assert c.locator(".status").inner_text() == "Done"

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # The raw JSON: shown on the page, and downloadable.
        generated.get_by_text("View Raw JSON (verdict)").click()
        shown = json.loads(generated.locator("pre").inner_text())
        assert shown["schema"] == "trustframe.verdict/1" and shown["label"] == "ai-generated"
        with page.expect_download() as download:
            generated.get_by_role("link", name="Download JSON").click()
        assert download.value.suggested_filename == "generated.verdict.json"
        assert json.loads(Path(download.value.path()).read_text())["file"] == "generated.png"

        # Phone width: one column, nothing wider than the screen.
        page.set_viewport_size({"width": 375, "height": 812})
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert altered.locator(".compare .recovered").bounding_box()["x"] < 40  # stacked, not side by side


@pytest.mark.slow
@needs_chromium
def test_api_key_is_asked_for_once_and_kept_for_the_tab(world, page):
    settings, files, _ = world
    keyed = load_settings(api_key="tab-key-123")
    sent: list[str | None] = []
    page.on("request", lambda r: r.url.endswith("/v1/audit") and sent.append(r.headers.get("x-api-key")))
    with serve(keyed) as url:
        page.goto(url)
        form = page.locator("#key-form")
        assert form.is_hidden()
        # Drag and drop a file onto the drop zone.
        data = list(files["generated.png"].read_bytes())
        page.evaluate("""data => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(data)], 'dropped.png', {type: 'image/png'}));
            const zone = document.getElementById('drop-zone');
            for (const type of ['dragenter', 'dragover', 'drop'])
                zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""", data)
        form.wait_for(state="visible")
        key = page.get_by_label("API key")
        assert key.evaluate("el => el === document.activeElement")
        assert card(page, "dropped.png").locator(".status").inner_text() == "Waiting for the API key…"

        key.fill("wrong")
        page.get_by_role("button", name="Use this key").click()
        page.get_by_text("That key was not accepted").wait_for()
        assert form.is_visible()

        key.fill("tab-key-123")
        key.press("Enter")
        wait_for_cards(page, 1)
        assert card(page, "dropped.png").locator(".label").inner_text() == "AI-generated"
        assert page.evaluate("sessionStorage.getItem('trustframe.apiKey')") == "tab-key-123"
        assert page.locator("#key-saved").is_visible() and form.is_hidden()

        # The next file goes through without asking again.
        page.get_by_label("Choose files").set_input_files(str(files["photo-edited.png"]))
        wait_for_cards(page, 2)
        assert form.is_hidden()
        assert card(page, "photo-edited.png").locator(".label").inner_text() == "Tampered"
        assert sent == [None, "wrong", "tab-key-123", "tab-key-123"]

        # Another tab (a fresh session) does not have the key.
        other = page.context.browser.new_page()
        other.goto(url)
        assert other.evaluate("sessionStorage.getItem('trustframe.apiKey')") is None
        other.close()


def detector_verdict(name: str) -> dict:
    """A verdict that carries the detector, made through the Verdict model so it keeps to the schema."""
    from trustframe.service.verdict import DetectorSection, ProvenanceSection, Verdict, WatermarkSection

    frames = [{"time_s": i / 4, "frame": 6 * i, "score": s}
              for i, s in enumerate([0.2, 0.35, 0.5, 0.93, 0.97, 0.8, 0.6, 0.4])]
    return Verdict(
        file=name, media_type="video/mp4", sha256="00" * 32, label="likely-ai-generated",
        reasons=["no TrustFrame watermark (p = 0.41)",
                 "the detector looks AI-generated: P(AI-generated) = 0.95 (flags at 0.90, ...)"],
        provenance=ProvenanceSection(present=False),
        watermark=WatermarkSection(detected=False, p_value=0.41, alg="org.trustframe.wm.1"),
        detector=DetectorSection(score=0.95, label="likely-ai", threshold=0.9, threshold_fpr=0.01,
                                 model="tfdet-test", frames=frames, top_frame=24, h264_qp=38.5)).to_dict()


@pytest.mark.slow
@needs_chromium
def test_detector_timeline_and_heat_map(world, page):
    """The server's answers are stubbed in the browser: a fixed detector verdict, one heat map that
    loads, one that fails, and a refused upload."""
    from PIL import Image

    settings, files, _ = world
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    heat = buf.getvalue()

    def audit(route):
        body = route.request.post_data_buffer
        if b'filename="big.mp4"' in body:
            route.fulfill(status=413, content_type="application/problem+json", body=json.dumps(
                {"type": "about:blank", "title": "Content Too Large", "status": 413,
                 "detail": "upload exceeds the limit of 1000 bytes"}))
        else:
            route.fulfill(status=200, content_type="application/json",
                          body=json.dumps(detector_verdict("x.mp4")))

    def heatmap(route):
        if b'filename="hot.mp4"' in route.request.post_data_buffer:
            route.fulfill(status=200, content_type="image/png", body=heat)
        else:
            route.fulfill(status=500, content_type="application/problem+json",
                          body='{"type": "about:blank", "title": "Internal Server Error", "status": 500}')

    page.route("**/v1/audit", audit)
    page.route("**/v1/detector/heatmap", heatmap)
    with serve(settings) as url:
        page.goto(url)
        # Keyboard: the file picker is reachable with Tab right after the skip link.
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "file-input"
        uploads = [{"name": n, "mimeType": "video/mp4", "buffer": b"\0" * 100}
                   for n in ("hot.mp4", "cold.mp4", "big.mp4")]
        page.get_by_label("Choose files").set_input_files(uploads)
        wait_for_cards(page, 3)
        hot = card(page, "hot.mp4")
        assert hot.locator(".label").inner_text() == "Likely AI-generated"
        det = hot.locator("section.block", has_text="AI detector")
        text = det.inner_text()
        for expected in ("0.95", "Looks AI-generated", "Flags at 0.90 (set for 1 % false positives",
                         "tfdet-test", "frame 24 at 1.00 s: 0.97",
                         "H.264 quantiser 38.5: the score is calibrated for this compression"):
            assert expected in text, expected
        plot = det.locator("svg.timeline")
        assert plot.locator("circle").count() == 8 and plot.locator("circle.top").count() == 1
        assert len(plot.locator("polyline").get_attribute("points").split()) == 8
        assert "flags at 0.90" in plot.text_content()
        assert det.locator("img.heatmap").evaluate("img => img.complete && img.naturalWidth") == 64
        # The heat map call failed for the other file: no image, no placeholder left behind.
        cold = card(page, "cold.mp4").locator("section.block", has_text="AI detector")
        assert cold.locator("img.heatmap").count() == 0 and cold.locator(".heatmap-slot").count() == 0
        card(page, "cold.mp4").locator(".thumbs .no-preview").wait_for()  # not a decodable video
        # A refused upload: the problem's detail is shown, and the card says it failed.
        big = card(page, "big.mp4")
        assert big.locator(".label").inner_text() == "Could not check"
        assert "the server answered 413: upload exceeds the limit of 1000 bytes" in big.inner_text()
        assert big.locator(".status").inner_text() == "Failed"
