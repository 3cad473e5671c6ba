"""The explorer's web layer: Starlette routes for the views' JSON (/api/...) and the static front end,
served by uvicorn. Starlette because the app is small and read-mostly: a handful of JSON routes and
static files need routing and nothing else (no ORM, forms, sessions or templates), it is already
installed with dagster-webserver (which is built on it), and it runs the blocking DuckDB reads in a
thread pool so a slow read never stalls other requests."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import altair as alt
import uvicorn
import vl_convert
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rs_dagster.errors import InputError
from rs_dagster.explore import nights, views
from rs_dagster.explore.blocks import for_browser
from rs_dagster.explore.queries import LabData
from rs_dagster.storage.warehouse import Warehouse

STATIC = Path(__file__).parent / "static"
DAGSTER_URL = "http://127.0.0.1:3000"


def _user_cache() -> Path:
    """This user's cache folder for what any lab may share (XDG_CACHE_HOME, else ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rs-dagster"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    partial.write_text(text)
    partial.replace(path)  # a concurrent start reads the whole bundle or writes its own


@lru_cache(maxsize=4)
def vega_bundle(cache_dir: Path) -> str:
    """vega, vega-lite (the version Altair writes) and vega-embed as one script, built locally by
    vl-convert: the page loads no JavaScript from a CDN, so it works offline and behind firewalls.
    Building takes seconds, so the bundle is kept in `cache_dir` under the versions it holds, and in
    the user's cache folder, from which a new lab copies it instead of building it again."""
    vl_version = alt.SCHEMA_VERSION.rsplit(".", 1)[0]
    name = f"vega-{vl_convert.get_vega_version()}-lite-{vl_version}-embed-{vl_convert.get_vega_embed_version()}.js"
    cached, shared = cache_dir / name, _user_cache() / name
    if cached.is_file():
        return cached.read_text()
    if shared.is_file():
        bundle = shared.read_text()
    else:
        snippet = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
        bundle = vl_convert.javascript_bundle(snippet, vl_version=vl_version)
        with contextlib.suppress(OSError):  # a read-only home only costs the next lab a build
            _write_atomically(shared, bundle)
    _write_atomically(cached, bundle)
    return bundle


def default_cache(source: Path | Warehouse) -> Path:
    """The lab's cache folder: beside the DuckDB file when it sits in the lab's state folder (`rs`'s default),
    in this host's state folder for a shared warehouse."""
    return (source.local_dir if isinstance(source, Warehouse) else Path(source).parent) / "cache"


def create_app(source: Path | Warehouse, dagster_url: str = DAGSTER_URL, cache_dir: Path | None = None) -> Starlette:
    """The explorer on `source`: the lab's warehouse (Warehouse.from_settings) or a DuckDB file's path."""
    lab = LabData(source)
    cache = cache_dir or default_cache(source)

    def respond(build: Callable[[LabData], views.View]) -> Response:
        try:
            with lab.session() as data:
                return JSONResponse(for_browser(build(data)))
        except views.NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    def api(request: Request) -> Response:
        """One route per view, split from the raw path so that a segment may hold an escaped "/" (`org%2Fmodel`)."""
        kind, *args = [unquote(part) for part in request.scope["raw_path"].decode().split("/")[2:]]
        match kind, args:
            case "leaderboard", []:
                return respond(views.leaderboard_view)
            case "task", [task]:
                return respond(lambda data: views.task_view(data, task))
            case "point", [model, task, point_id]:
                page = request.query_params.get("page", "1")
                return respond(lambda data: views.point_view(data, model, task, point_id, max(int(page) - 1, 0) if page.isdigit() else 0))
            case "sample", [model, task, test_case_id, index] if index.isdigit():
                return respond(lambda data: views.sample_view(data, model, task, test_case_id, int(index), dagster_url))
            case "compare", [model_a, model_b]:
                return respond(lambda data: views.compare_view(data, model_a, model_b))
            case "nights", [model]:
                return respond(lambda data: nights.nights_view(data, model))
        return JSONResponse({"error": f"no view at {request.url.path}"}, status_code=404)

    def vega(request: Request) -> Response:
        return Response(vega_bundle(cache), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    return Starlette(routes=[
        Route("/api/{route:path}", api),
        Route("/vega.js", vega),
        Mount("/", StaticFiles(directory=STATIC, html=True)),
    ])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one, so the URL is known before serving starts."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # from here connections queue, so a client may connect as soon as the URL is printed
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def server(app: Starlette) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))


@contextmanager
def running(source: Path | Warehouse, dagster_url: str = DAGSTER_URL, host: str = "127.0.0.1", cache_dir: Path | None = None) -> Iterator[str]:
    """The explorer served from a background thread on a free port, for tests, screenshots and benchmarks;
    yields its URL."""
    sock = bind(host, 0)
    served = server(create_app(source, dagster_url, cache_dir))
    thread = threading.Thread(target=served.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not served.started:
        if not thread.is_alive():
            raise RuntimeError("the explorer's server stopped before it started")
        threading.Event().wait(0.02)
    try:
        yield url_of(sock)
    finally:
        served.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(source: Path | Warehouse, host: str, port: int, dagster_url: str, on_ready: Callable[[str], None]) -> None:
    """Serve until Ctrl-C; `on_ready` gets the URL once the port is bound, before serving starts."""
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (pick another with --port, or --port 0 for a free one)") from None
    on_ready(url_of(sock))
    with sock:
        server(create_app(source, dagster_url)).run(sockets=[sock])
