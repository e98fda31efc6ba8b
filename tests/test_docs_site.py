"""The documentation's browser check finds what it is for: broken links, missing images, console errors."""

from __future__ import annotations

import pathlib
import shutil
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
sys.path.insert(0, str(DOCS))
import check_site  # noqa: E402

sys.path.remove(str(DOCS))

# A 1x1 PNG.
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5f8d6"
                      "ad0000000049454e44ae426082")


def _site(root: pathlib.Path) -> pathlib.Path:
    (root / "sub").mkdir(parents=True)
    (root / "pixel.png").write_bytes(PIXEL)
    (root / "index.html").write_text(
        '<html><head><title>home</title></head><body><h1 id="top">x</h1>'
        '<a href="sub/page.html#here">ok</a> <a href="#top">ok</a> <img src="pixel.png">'
        '<a href="https://example.org/">external, not followed</a></body></html>', encoding="utf-8")
    (root / "sub" / "page.html").write_text(
        '<html><head><title>page</title></head><body><p id="here">x</p>'
        '<a href="../index.html#nowhere">bad anchor</a> <a href="missing.html">bad file</a>'
        '<img src="../absent.png"><script>console.error("boom")</script></body></html>', encoding="utf-8")
    return root


def test_links_are_checked(tmp_path):
    checked, problems = check_site.check_links(_site(tmp_path))
    assert checked == 6
    assert sorted(p.split(": ", 1)[1] for p in problems) == [
        "<a> ../index.html#nowhere: no id 'nowhere' in index.html",
        "<a> missing.html: no such file",
        "<img> ../absent.png: no such file",
    ]


@pytest.mark.slow
@pytest.mark.skipif(check_site.find_chromium() is None, reason="chromium not installed (apt-get install chromium)")
def test_browser_sees_console_errors_and_broken_images(tmp_path):
    root = _site(tmp_path / "site")
    report, problems = check_site.check_pages(root, check_site.find_chromium(), tmp_path / "shots",
                                              pages=["index.html", "sub/page.html"],
                                              screenshots={"index.html": "home.png"})
    assert report[0] == "index.html: 'home', 1 images, ok"
    assert not [p for p in problems if p.startswith("index.html")]
    page = [p for p in problems if p.startswith("sub/page.html")]
    assert any("console error: boom" in p for p in page), page
    assert any("image did not load" in p and "absent.png" in p for p in page), page
    assert (tmp_path / "shots" / "home.png").read_bytes().startswith(b"\x89PNG")


def test_chromium_is_found_on_the_path(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/chromium" if name == "chromium" else None)
    assert check_site.find_chromium() == "/usr/bin/chromium"
