"""Application factory of orders-console: sign-in, the pages, security headers, deny by default."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from ops.console.config import CONSOLE_READ_SCOPES, ConsoleSettings
from ops.console.context import Console
from ops.console.indexer import LogIndexer
from ops.console.metrics_sampler import MetricsSampler
from ops.console.pages_data import data_pages
from ops.console.pages_pipeline import pipeline_pages
from ops.console.search import open_index
from ops.console.service_client import ServiceClient
from ops.console.sign_in import install_sign_in, load_secret_key, sign_in, sign_out
from shared.contract.principal import READ_ALL
from shared.http.auth import public
from shared.infra.auth_setup import build_verifier, token_from
from shared.infra.tokens import InvalidToken

STATIC_DIR = Path(__file__).parent / "static"
# No script at all; styles and images from the console itself; forms post only to it.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

account = Blueprint("console", __name__)


def create_app(settings: ConsoleSettings | None = None, background: bool = True) -> Flask:
    """Build the console; `background` starts the index follower and the metrics sampler."""
    settings = settings or ConsoleSettings.from_env()
    verifier = build_verifier(settings.service, settings.host)
    token = token_from(settings.service, settings.token_file, "orders-console", CONSOLE_READ_SCOPES)
    command_api = ServiceClient(settings.command_api_url, token)
    index = open_index(settings.search_url)
    parts = Console(
        settings=settings,
        command_api=command_api,
        query_api=ServiceClient(settings.query_api_url, token),
        index=index,
        indexer=LogIndexer(index, command_api, settings.index_interval_s),
        sampler=MetricsSampler(command_api, settings.sample_interval_s),
    )
    app = Flask(__name__, static_folder=None)
    app.extensions["console"] = parts
    app.register_blueprint(account)
    app.register_blueprint(pipeline_pages)
    app.register_blueprint(data_pages)
    _install_headers_and_errors(app)
    install_sign_in(app, verifier, load_secret_key(settings.secret_key_file))
    if background:
        parts.indexer.start()
        parts.sampler.start()
    return app


@account.get("/sign-in")
@public
def sign_in_page() -> str:
    return render_template("sign_in.html", next=_safe_next(request.args.get("next")), error=None)


@account.post("/sign-in")
@public
def sign_in_submit() -> BaseResponse | tuple[str, int]:
    pasted = request.form.get("token", "").strip().removeprefix("Bearer ").strip()
    target = _safe_next(request.form.get("next"))
    if not pasted:
        return render_template("sign_in.html", next=target, error="Paste a bearer token."), 400
    try:
        principal = sign_in(pasted)
    except InvalidToken as exc:
        return render_template("sign_in.html", next=target, error=f"Token refused: {exc}."), 400
    if not principal.has(READ_ALL):
        sign_out()
        error = "This token lacks read:all (or admin): the console shows every customer's data."
        return render_template("sign_in.html", next=target, error=error), 403
    return redirect(target)


@account.post("/sign-out")
@public
def sign_out_submit() -> BaseResponse:
    sign_out()
    return redirect(url_for("console.sign_in_page"))


@account.get("/healthz")
@public
def healthz() -> Response:
    return jsonify(status="ok")


@account.get("/static/<path:filename>")
@public
def static_file(filename: str) -> Response:
    return send_from_directory(STATIC_DIR, filename, max_age=3600)


def _safe_next(target: str | None) -> str:
    """Only a path of this console: never an open redirect to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pipeline.overview")
    return target


def _install_headers_and_errors(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        status = exc.code or 500
        needed = g.get("needed_scopes")
        return render_template(
            "error.html", status=status, title=exc.name, detail=exc.description, needed=needed
        ), status
