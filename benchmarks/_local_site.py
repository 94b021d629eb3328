"""The built site served on 127.0.0.1, and the Chromium that reads it.

One server and one set of Chromium flags for everything that opens the site in a browser: the
Lighthouse benchmark and the browser tests, so both see the site as a static host serves it.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# No GPU, no sandbox (CI runs as root), and nothing that would reach the network behind the
# page's back. Headless mode is left to the caller: Playwright sets its own.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

COMPRESSIBLE = {".html", ".css", ".js", ".svg", ".json", ".txt", ".ipynb", ".md"}


class CompressingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves text files gzip-compressed when asked, as any real static host does."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (accepts_gzip and path.is_file() and path.suffix in COMPRESSIBLE):
            return super().send_head()
        body = gzip.compress(path.read_bytes(), mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600")
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free port of 127.0.0.1 and yield its base URL."""
    handler = functools.partial(CompressingHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def chromium() -> str:
    """The path of Debian's Chromium, or an error that says how to install it."""
    executable = shutil.which("chromium")
    if executable is None:
        raise FileNotFoundError(
            "Chromium is missing: install Debian's package with `apt-get install chromium`."
        )
    return executable
