"""Check the built site in a real browser: pages load cleanly, their images load, links resolve.

    python docs/check_site.py [--html docs/_build/html] [--screenshots docs/_build/screenshots]

1. Every local link and image of every built page (``href`` and ``src``) names a file of the
   site, and a ``#fragment`` names an ``id`` in that file.
2. Headless Chromium (Debian's ``chromium`` package, driven through the DevTools protocol over a
   pipe: no driver, no extra Python package) opens the home page, the API page of ``Solver``, the
   gallery and one example, served from 127.0.0.1. Each must load without console errors,
   uncaught exceptions or failed requests, ask for nothing outside 127.0.0.1, and every image on
   it must load (``naturalWidth > 0``).
3. Screenshots of these pages (the gallery's among them) go to ``--screenshots`` (a CI artifact).

Exit status 0 when everything holds, 1 with one line per problem otherwise, 2 when the site or
the browser is missing.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import functools
import html.parser
import http.server
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

PAGES = [
    "index.html",
    "api/generated/xpml.nets.Solver.html",
    "auto_examples/index.html",
    "auto_examples/plot_spiral_decision_regions.html",
]
SCREENSHOTS = {"index.html": "home.png", "api/generated/xpml.nets.Solver.html": "api_solver.png",
               "auto_examples/index.html": "gallery.png",
               "auto_examples/plot_spiral_decision_regions.html": "gallery_spiral.png"}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]
PAGE_TIMEOUT = 60.0  # seconds for one page to load, on a busy CI machine


# ---- 1. links -------------------------------------------------------------------------------------

class _Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif (name == "href" and tag in ("a", "link")) or (name == "src" and tag in ("img", "script")):
                self.refs.append((tag, value))


@functools.cache
def _parse(path: pathlib.Path) -> _Refs:
    parser = _Refs()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def check_links(root: pathlib.Path) -> tuple[int, list[str]]:
    """(number of local links checked, problems) over every HTML file under ``root``."""
    problems, checked = [], 0
    for page in sorted(root.rglob("*.html")):
        if page.relative_to(root).parts[0] in ("_static", "_sources"):
            continue  # the theme's own templates and copies, not pages of the site
        for tag, ref in _parse(page).refs:
            parts = urllib.parse.urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith(("mailto:", "javascript:")):
                continue  # an external link: the site must not need it, and this check never follows it
            checked += 1
            target = page if not parts.path else (page.parent / urllib.parse.unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(root)}: <{tag}> {ref}"
            if not target.is_relative_to(root.resolve()) and not target.is_relative_to(root):
                problems.append(f"{where}: points outside the site")
            elif not target.is_file():
                problems.append(f"{where}: no such file")
            elif parts.fragment and target.suffix == ".html":
                fragment = urllib.parse.unquote(parts.fragment)
                if fragment not in _parse(target).ids:
                    problems.append(f"{where}: no id {fragment!r} in {target.name}")
    return checked, problems


# ---- 2. the browser ------------------------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(root: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _above(fd: int, lowest: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return moved


class Browser:
    """Chromium driven by the DevTools protocol over ``--remote-debugging-pipe`` (fds 3 and 4)."""

    def __init__(self, executable: str, profile: str):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Move the child's ends above 4, so that putting them on 3 and 4 cannot close one of them.
        to_child_r, from_child_w = (_above(fd, 10) for fd in (to_child_r, from_child_w))
        # The child reads commands on fd 3 and writes replies on fd 4; bash puts them there (dash
        # cannot name fds above 9).
        command = f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-'
        self.proc = subprocess.Popen(["/bin/bash", "-c", command, executable, *FLAGS, f"--user-data-dir={profile}",
                                      "about:blank"], pass_fds=(to_child_r, from_child_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        self._stderr: list[bytes] = []
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True).start()

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed its DevTools pipe; its stderr: "
                                   + b"".join(self._stderr).decode(errors="replace")[-2000:])
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float = PAGE_TIMEOUT) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, method: str, *, session: str, name: str | None = None, timeout: float = PAGE_TIMEOUT) -> None:
        """Wait for an event (kept in the event list with the others)."""
        deadline = time.monotonic() + timeout
        seen = len(self._events)
        while True:
            for event in self._events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session and (
                        name is None or event["params"].get("name") == name):
                    return
            seen = len(self._events)
            self._events.append(self._read_message(deadline))

    def take_events(self) -> list[dict]:
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


_IMAGES_JS = """
(async () => {
  const images = Array.from(document.images);
  for (const img of images) { img.loading = "eager"; }   // lazy images load off screen too
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  return images.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth}));
})()
"""


def _problems_in(events: list[dict], base: str) -> list[str]:
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            problems.append(f"console error: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            problems.append(f"uncaught exception: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            if not entry.get("url", "").endswith("/favicon.ico"):
                problems.append(f"console error: {entry.get('text')} {entry.get('url', '')}".rstrip())
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith((base, "data:", "blob:", "about:")):
                problems.append(f"asks the network for {url}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"failed request: {params.get('errorText')} ({params.get('type')})")
        elif method == "Network.responseReceived":
            response = params.get("response", {})
            if response.get("status", 200) >= 400 and not response.get("url", "").endswith("/favicon.ico"):
                problems.append(f"HTTP {response.get('status')} for {response.get('url')}")
    return problems


def check_pages(root: pathlib.Path, executable: str, shots: pathlib.Path, *, pages=PAGES,
                screenshots=None) -> tuple[list[str], list[str]]:
    """(lines of what was checked, problems) for ``pages`` (default :data:`PAGES`) in the browser."""
    screenshots = SCREENSHOTS if screenshots is None else screenshots
    server, base = serve(root)
    report, problems = [], []
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xpml-chromium-") as profile:
        browser = Browser(executable, profile)
        try:
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable", session=session)
            browser.send("Page.setLifecycleEventsEnabled", {"enabled": True}, session=session)
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=session)
            for page in pages:
                browser.take_events()
                url = base + page
                result = browser.send("Page.navigate", {"url": url}, session=session)
                if result.get("errorText"):
                    problems.append(f"{page}: {result['errorText']}")
                    continue
                browser.wait_for("Page.lifecycleEvent", session=session, name="networkIdle")
                images = browser.send("Runtime.evaluate", {"expression": _IMAGES_JS, "awaitPromise": True,
                                                           "returnByValue": True}, session=session)
                images = images.get("result", {}).get("value", [])
                title = browser.send("Runtime.evaluate", {"expression": "document.title", "returnByValue": True},
                                     session=session)["result"].get("value", "")
                page_problems = [f"image did not load: {img['src']}" for img in images if not img["width"]]
                if page in screenshots:
                    shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
                    (shots / screenshots[page]).write_bytes(base64.b64decode(shot["data"]))
                page_problems += _problems_in(browser.take_events(), base)
                if not title:
                    page_problems.append("no title")
                problems += [f"{page}: {p}" for p in page_problems]
                report.append(f"{page}: {title!r}, {len(images)} images, "
                              + ("ok" if not page_problems else f"{len(page_problems)} problems"))
        finally:
            browser.close()
            server.shutdown()
            server.server_close()
    return report, problems


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def main(argv=None) -> int:
    docs = pathlib.Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=pathlib.Path, default=docs / "_build" / "html", help="the built site")
    parser.add_argument("--screenshots", type=pathlib.Path, default=docs / "_build" / "screenshots",
                        help="where the screenshots go")
    parser.add_argument("--chromium", help="the browser (default: chromium on the PATH)")
    args = parser.parse_args(argv)
    root = args.html.resolve()
    if not (root / "index.html").is_file():
        print(f"error: no built site in {root}; build it first: python -m sphinx -W -b html docs docs/_build/html",
              file=sys.stderr)
        return 2
    executable = args.chromium or find_chromium()
    if executable is None:
        print("error: no chromium on the PATH; install it with: apt-get install -y chromium", file=sys.stderr)
        return 2
    checked, problems = check_links(root)
    print(f"links: {checked} local links and images in {len(list(root.rglob('*.html')))} pages checked, "
          f"{len(problems)} broken")
    report, page_problems = check_pages(root, executable, args.screenshots)
    for line in report:
        print(f"browser: {line}")
    problems += page_problems
    print(f"screenshots: {args.screenshots}")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
