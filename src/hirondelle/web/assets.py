"""The webmail's built, content-hashed assets and the application shell (issue 8), under a strict
CSP.

What Vite writes to ``webapp/dist`` (or the ``server.webapp`` directory):

- ``assets/NAME-HASH.EXT``: content-hashed, so served with a one-year ``immutable`` lifetime;
- ``index.html``: the shell, ``no-cache`` so a new build is picked up at the next load;
- ``sw.js``: the service worker, at a stable URL (a hashed name would register a new worker
  per build and leave the old one running), ``no-cache`` as browsers expect.

The set of files is read once when the routes are built: a file that is not in the build is
a 404, and no request path ever reaches the file system (no traversal to guard).

Content-Security-Policy (RFC-less, W3C CSP Level 3): scripts only from this origin, no
``unsafe-eval``, no inline script. Inline *styles* are allowed because the reading pane
shows sanitised HTML mail in a sandboxed ``srcdoc`` frame, which inherits this policy, and
mail layout lives in ``style`` attributes. Remote images are allowed by this outer policy
only so that a user can choose to show them; the frame adds its own, narrower policy (no
remote images until allowed) and the sanitiser removes remote URLs as well.
"""

from __future__ import annotations

import gzip
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from hirondelle.services import Services

SOURCE_TREE_BUILD = Path(__file__).resolve().parents[3] / "webapp" / "dist"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: https:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SHELL_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

IMMUTABLE = "public, max-age=31536000, immutable"
COMPRESSIBLE = {".js", ".css", ".svg", ".json", ".html", ".txt", ".map"}
REVALIDATE = "no-cache"

# Paths the single-page application answers itself (it routes on the path); each serves
# index.html. The password-reset link is /reset-password#token=..., the token in the
# fragment so it never reaches a server log or a Referer.
APPLICATION_PATHS = ("/", "/reset-password", "/mail", "/mail/{rest:path}", "/settings")


@dataclass(frozen=True)
class Build:
    """The files of one webmail build."""

    directory: Path
    assets: dict[str, Path]
    # Compressed once, on first request, off the event loop; the files never change.
    compressed: dict[str, bytes] = field(default_factory=dict)

    @property
    def index(self) -> Path:
        return self.directory / "index.html"

    @property
    def service_worker(self) -> Path:
        return self.directory / "sw.js"


def find_build(configured: str) -> Build | None:
    """The build in ``configured`` (or the source tree's when empty), if there is one."""
    directory = Path(configured).expanduser() if configured else SOURCE_TREE_BUILD
    if not (directory / "index.html").is_file():
        return None
    assets_dir = directory / "assets"
    assets = (
        {path.name: path for path in assets_dir.iterdir() if path.is_file()}
        if assets_dir.is_dir()
        else {}
    )
    return Build(directory=directory, assets=assets)


def _media_type(path: Path) -> str:
    if path.suffix == ".js":
        return "text/javascript; charset=utf-8"
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed is None:
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def accepts_gzip(header: str) -> bool:
    """RFC 9110 §12.5.3: whether Accept-Encoding allows gzip (``q=0`` refuses it)."""
    for item in header.split(","):
        name, _, parameters = item.partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        quality = 1.0
        for parameter in parameters.split(";"):
            key, _, value = parameter.strip().partition("=")
            if key.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


def _gzip_file(path: Path) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=9)


def routes(services: Services) -> list[BaseRoute]:
    """The routes this part adds to the node's HTTP application (none when not built)."""
    build = find_build(services.settings.server.webapp)
    if build is None:
        return []

    async def shell(_request: Request) -> Response:
        return FileResponse(
            build.index,
            media_type="text/html; charset=utf-8",
            headers={**SHELL_HEADERS, "Cache-Control": REVALIDATE},
        )

    async def service_worker(_request: Request) -> Response:
        if not build.service_worker.is_file():
            return PlainTextResponse("not found", status_code=404, headers=SHELL_HEADERS)
        return FileResponse(
            build.service_worker,
            media_type="text/javascript; charset=utf-8",
            headers={**SHELL_HEADERS, "Cache-Control": REVALIDATE},
        )

    async def asset(request: Request) -> Response:
        path = build.assets.get(request.path_params["name"])
        if path is None:
            return PlainTextResponse(
                "not found", status_code=404, headers={**SHELL_HEADERS, "Cache-Control": "no-store"}
            )
        headers = {**SHELL_HEADERS, "Cache-Control": IMMUTABLE}
        if path.suffix not in COMPRESSIBLE:
            return FileResponse(path, media_type=_media_type(path), headers=headers)
        headers["Vary"] = "Accept-Encoding"
        if not accepts_gzip(request.headers.get("accept-encoding", "")):
            return FileResponse(path, media_type=_media_type(path), headers=headers)
        body = build.compressed.get(path.name)
        if body is None:
            body = await anyio.to_thread.run_sync(_gzip_file, path)
            build.compressed[path.name] = body
        return Response(
            body,
            media_type=_media_type(path),
            headers={**headers, "Content-Encoding": "gzip"},
        )

    return [
        *(Route(path, shell, methods=["GET", "HEAD"]) for path in APPLICATION_PATHS),
        Route("/sw.js", service_worker, methods=["GET", "HEAD"]),
        Route("/assets/{name}", asset, methods=["GET", "HEAD"]),
    ]
