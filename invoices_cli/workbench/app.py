"""The workbench: a small server-rendered WSGI app (stdlib ``wsgiref`` + Jinja2) over the ledger and the items.

Pages: ``/`` compares models (the rows of :func:`invoices_cli.comparison.compare_models`, the same numbers as
``invoices report --format json``, served as JSON at ``/report.json``); ``/review`` is the queue of orders to
review, worst first; ``/review/ORDER_ID`` shows the order's invoice images beside each model's lines and an editor
whose POST saves the order's ground truth; ``/image/ORDER_ID/INVOICE_INDEX/SEGMENT`` serves an invoice image.

Access: every request needs the random token printed at start, in the query (``?token=``: the answer sets an
HttpOnly ``SameSite=Strict`` cookie, named after the server's port since browsers do not scope cookies by port,
and redirects to the same page without it) or in that cookie; without it the answer is 403. The Host header must
name the address the server listens on (no DNS rebinding). Writes are POST only, with a CSRF token in a form field
and, when the browser sends one, an Origin naming this server. Nothing of a POST's body is read before the Host,
the token and the Origin are checked, and then only a declared length of at most ``MAX_FORM_BYTES`` (a missing,
negative or larger one is refused without reading). A strict Content-Security-Policy lets the page load nothing
from anywhere else.

Images go through the consumer's own checks: :func:`invoice_pipeline.documents.urls.parse_invoice_image` (allow-listed
buckets only), :func:`invoice_pipeline.documents.images.fetch_invoice_image` (``MAX_IMAGE_BYTES``) and
:func:`invoice_pipeline.documents.images.prepare_invoice` (PDF pages rendered, EXIF orientation, tall receipts split):
the reviewer sees what the model saw.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.documents import images, urls
from invoice_pipeline.errors import PipelineError, describe
from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.flows.consume import image_fetcher
from invoice_pipeline.reading import validation
from invoice_pipeline.reading.money import currency_decimals
from invoice_pipeline.tables import evidence, items, ledger_reads, orders
from invoice_pipeline.tables.db import ConnectionPool, pool
from invoice_pipeline.tables.ledger import JobStatus
from invoices_cli import comparison, ground_truth
from invoices_cli.settings import WorkbenchSettings
from invoices_cli.workbench import plots

COOKIE = "workbench_token"
MAX_FORM_BYTES = 1024 * 1024
IMAGE_CACHE_ORDERS = 16
QUEUE_PAGE_SIZE = 100
ARITHMETIC_CODES = frozenset({"line_total_mismatch", "missing_line_total", "too_many_decimals"})
# Fields of one editor line, as the form names them, and the ExtractedItem field each fills.
LINE_FIELDS = ("description", "quantity", "unit", "unit_price", "line_total")
NUMERIC_LINE_FIELDS = ("quantity", "unit_price", "line_total")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class BadRequest(ValueError):
    """The request is malformed; the message says what is wrong and is shown to the user."""


class PayloadTooLarge(BadRequest):
    """The declared body is longer than the workbench reads (answered 413 without reading it)."""


class FormError(BadRequest):
    """A value of the ground-truth editor cannot be read: which line (0-based position in the form) and field."""

    def __init__(self, message: str, position: int, field: str) -> None:
        super().__init__(message)
        self.position = position
        self.field = field


class Forbidden(Exception):
    """No valid token, a foreign Host or Origin, or a missing CSRF token."""


class NotFound(Exception):
    pass


class Conflict(Exception):
    """The save is based on a version another save has replaced; the message says what to do."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    cookies: dict[str, str]
    form: dict[str, list[str]] = field(default_factory=dict)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: str
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def _request(environ: dict[str, Any]) -> Request:
    """The request's line, headers and cookies; its body is read by :func:`_read_form`, once it is allowed."""
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    cookie = SimpleCookie()
    with suppress(Exception):  # a malformed Cookie header carries no token
        cookie.load(headers.get("cookie", ""))
    request = Request(
        method=environ["REQUEST_METHOD"],
        path=environ.get("PATH_INFO") or "/",
        query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        headers=headers,
        cookies={name: morsel.value for name, morsel in cookie.items()},
    )
    return request


def _read_form(environ: dict[str, Any]) -> dict[str, list[str]]:
    """A POST's form: exactly its declared length, at most MAX_FORM_BYTES; anything else is refused unread."""
    raw = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if not raw.isdigit():  # "-1", "1e9", " 12x": never "read until the client closes"
        raise BadRequest(f"Content-Length must be a number of bytes, got {raw[:20]!r}")
    if len(raw) > 12 or int(raw) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"form larger than {MAX_FORM_BYTES} bytes")
    body = environ["wsgi.input"].read(int(raw)).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


# ------------------------------------------------------------------------------------------ filters and editing


def parse_filter(query: dict[str, list[str]]) -> comparison.ComparisonFilter:
    """The comparison filter from the page's query (``restaurant``, ``since``, ``until``, ``llm``)."""

    def dates(name: str) -> date | None:
        raw = (query.get(name) or [""])[0].strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise BadRequest(f"{name} must be a date like 2026-11-29, got {raw!r}") from None

    restaurant_ids = []
    for raw in query.get("restaurant", []):
        if raw.strip():
            try:
                restaurant_ids.append(int(raw))
            except ValueError:
                raise BadRequest(f"restaurant must be an id (an integer), got {raw!r}") from None
    llms = [llm for llm in query.get("llm", []) if llm.strip()]
    return comparison.ComparisonFilter(
        restaurant_ids=tuple(restaurant_ids) or None,
        since=dates("since"),
        until=dates("until"),
        llms=tuple(llms) or None,
    )


def _number(text: str, where: str) -> Decimal | None:
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise BadRequest(f"{where}: {cleaned!r} is not a number (write it like 1250.50)") from None
    if not value.is_finite() or "e" in cleaned.lower():
        raise BadRequest(f"{where}: {cleaned!r} is not a plain decimal number")
    return value


def parse_ground_truth_form(form: dict[str, list[str]]) -> list[ExtractedInvoice]:
    """The editor's lines as invoices; blank lines are dropped, anything unreadable is a :class:`BadRequest`."""
    columns = {name: form.get(name, []) for name in ("invoice_index", *LINE_FIELDS)}
    count = len(columns["invoice_index"])
    if any(len(values) != count for values in columns.values()):
        raise BadRequest("the form's line fields do not line up (each line needs every field)")
    lines: dict[int, list[ExtractedItem]] = {}
    for position in range(count):
        where = f"line {position + 1}"
        raw = {name: columns[name][position] for name in LINE_FIELDS}
        if not any(value.strip() for value in raw.values()):
            continue
        invoice_index = _int(columns["invoice_index"][position], f"{where}: invoice", 0, ground_truth.MAX_INVOICE_INDEX)
        numbers = {}
        for name in NUMERIC_LINE_FIELDS:
            try:
                numbers[name] = _number(raw[name], f"{where} {name.replace('_', ' ')}")
            except BadRequest as error:
                raise FormError(str(error), position, name) from None
        item = ExtractedItem(
            raw["description"].strip() or None,
            numbers["quantity"],
            raw["unit"].strip() or None,
            numbers["unit_price"],
            numbers["line_total"],
        )
        try:
            ground_truth.check_line(item, where)
        except ground_truth.GroundTruthInvalid as error:
            raise BadRequest(str(error)) from None
        lines.setdefault(invoice_index, []).append(item)
    return [
        ExtractedInvoice(index, (form.get(f"currency_{index}") or [""])[0].strip() or None, None, tuple(found))
        for index, found in sorted(lines.items())
    ]


def arithmetic_marks(invoices: Iterable[ExtractedInvoice]) -> dict[tuple[int, int], str]:
    """(invoice_index, line_no) -> why the line breaks arithmetic, from
    :func:`invoice_pipeline.reading.validation.check`."""
    marks: dict[tuple[int, int], str] = {}
    for invoice in invoices:
        for warning in validation.check(invoice):
            if warning.line_no is not None and warning.code in ARITHMETIC_CODES:
                marks.setdefault((invoice.invoice_index, warning.line_no), warning.message)
    return marks


# ------------------------------------------------------------------------------------------------- the app


@dataclass
class InvoiceView:
    invoice_index: int
    location: str | None
    segments: int
    error: str | None


class Workbench:
    """The WSGI application. ``token`` guards every request; ``hosts`` are the Host headers it answers."""

    def __init__(
        self,
        settings: WorkbenchSettings,
        *,
        hosts: Iterable[str],
        token: str | None = None,
        reviewer: str = "reviewer",
        cookie: str = COOKIE,
        connections: ConnectionPool = pool,
        fetch_image: Callable[..., bytes] | None = None,  # default: the consumer's fetch, with its own S3 client
    ) -> None:
        self.settings = settings
        self.token = token or secrets.token_urlsafe(24)
        self.csrf = secrets.token_urlsafe(24)
        self.hosts = frozenset(hosts)
        self.reviewer = reviewer
        self.cookie = cookie  # the server names it after its port: `workbench_token_PORT`
        self.connections = connections
        self.fetch_image = fetch_image or image_fetcher(AwsClients())
        self.templates = templates()
        self._images: OrderedDict[int, list[tuple[str | None, tuple[bytes, ...], str | None]]] = OrderedDict()
        self._images_lock = threading.Lock()

    # -- WSGI ---------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        nonce = secrets.token_urlsafe(16)
        try:
            request = _request(environ)
            response = self._guarded(request, environ, nonce)
        except Forbidden as error:
            response = Response("403 Forbidden", f"forbidden: {error}\n".encode(), "text/plain; charset=utf-8")
        except PayloadTooLarge as error:
            response = self._error_page("413 Request Entity Too Large", str(error), nonce)
        except BadRequest as error:
            response = self._error_page("400 Bad Request", str(error), nonce)
        except NotFound as error:
            response = self._error_page("404 Not Found", str(error) or "no such page", nonce)
        except Conflict as error:
            response = self._error_page("409 Conflict", str(error), nonce)
        except PipelineError as error:  # the database is unreachable, a secret is missing: say which
            response = self._error_page("503 Service Unavailable", str(error), nonce)
        finally:
            self.connections.discard()  # this request's thread ends with it: so does its connection
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            # Not no-referrer: with it Chromium sends "Origin: null" on a same-origin POST, which the check refuses.
            ("Referrer-Policy", "same-origin"),
            (
                "Content-Security-Policy",
                f"default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
            *response.headers,
        ]
        start_response(response.status, headers)
        return [response.body]

    def _guarded(self, request: Request, environ: dict[str, Any], nonce: str) -> Response:
        if request.headers.get("host", "") not in self.hosts:
            raise Forbidden(f"Host {request.headers.get('host', '')!r} is not this workbench")
        supplied = request.arg("token")
        if supplied is not None:
            if not hmac.compare_digest(supplied.encode(), self.token.encode()):
                raise Forbidden("wrong token")
            # Trade the token in the URL for a cookie, and drop it from the address bar and the history.
            rest = {key: values for key, values in request.query.items() if key != "token"}
            location = request.path + ("?" + urlencode(rest, doseq=True) if rest else "")
            cookie = f"{self.cookie}={self.token}; HttpOnly; SameSite=Strict; Path=/"
            return Response("303 See Other", b"", headers=[("Location", location), ("Set-Cookie", cookie)])
        cookie_token = request.cookies.get(self.cookie)
        if cookie_token is None or not hmac.compare_digest(cookie_token.encode(), self.token.encode()):
            raise Forbidden("open the URL printed by `invoices workbench` (it carries the access token)")
        if request.method == "POST":
            self._check_origin(request)
            request.form = _read_form(environ)  # only now: the sender is known to be allowed
            self._check_csrf(request)
        elif request.method not in ("GET", "HEAD"):
            return Response("405 Method Not Allowed", b"", headers=[("Allow", "GET, POST")])
        return self._route(request, nonce)

    def _check_origin(self, request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin not in {f"http://{host}" for host in self.hosts}:
            raise Forbidden(f"cross-site request from {origin}")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise Forbidden("cross-site request")

    def _check_csrf(self, request: Request) -> None:
        supplied = (request.form.get("csrf") or [""])[0]
        if not hmac.compare_digest(supplied.encode(), self.csrf.encode()):
            raise Forbidden("missing or wrong CSRF token: reload the page and try again")

    def _route(self, request: Request, nonce: str) -> Response:
        parts = [part for part in request.path.split("/") if part]
        post = request.method == "POST"
        if not parts and not post:
            return self.comparison_page(request, nonce)
        if parts == ["report.json"] and not post:
            return self.report_json(request)
        if parts == ["review"] and not post:
            return self.queue_page(request, nonce)
        if len(parts) >= 2 and parts[0] == "review":
            order_id = _int(parts[1], "order id", 1, ground_truth.MAX_ORDER_ID)
            if len(parts) == 2 and not post:
                return self.review_page(request, order_id, nonce)
            if parts[2:] == ["save"] and post:
                return self.save(request, order_id, nonce)
            if parts[2:] == ["restore"] and post:
                return self.restore(request, order_id)
        if len(parts) == 4 and parts[0] == "image" and not post:
            return self.image(_int(parts[1], "order id"), _int(parts[2], "invoice"), _int(parts[3], "segment"))
        raise NotFound(f"no page at {request.path}")

    def _render(self, name: str, nonce: str, **values: Any) -> Response:
        body = self.templates.get_template(name).render(nonce=nonce, csrf=self.csrf, standalone=False, **values)
        return Response("200 OK", body.encode())

    def _error_page(self, status: str, message: str, nonce: str) -> Response:
        body = self.templates.get_template("error.html").render(
            nonce=nonce, status=status, message=message, standalone=False
        )
        return Response(status, body.encode())

    # -- pages ----------------------------------------------------------------------------------------------

    def comparison_page(self, request: Request, nonce: str) -> Response:
        scope = parse_filter(request.query)
        with self.connections.connection() as connection:
            rows = comparison.compare_models(connection, scope)
            choices = filter_choices(connection)
        return self._render("comparison.html", nonce, **comparison_context(rows, scope), choices=choices)

    def report_json(self, request: Request) -> Response:
        scope = parse_filter(request.query)
        with self.connections.connection() as connection:
            rows = comparison.compare_models(connection, scope)
        return Response("200 OK", comparison.rows_json(rows).encode(), "application/json")

    def queue_page(self, request: Request, nonce: str) -> Response:
        scope = parse_filter(request.query)
        with self.connections.connection() as connection:
            queue = comparison.review_queue(comparison.load_comparison_data(connection, scope))
        return self._render("queue.html", nonce, queue=queue[:QUEUE_PAGE_SIZE], total=len(queue))

    def _next_order(self, order_id: int) -> int | None:
        with self.connections.connection() as connection:
            queue = comparison.review_queue(comparison.load_comparison_data(connection, comparison.ComparisonFilter()))
        ids = [entry.order_id for entry in queue]
        if order_id in ids:
            position = ids.index(order_id)
            return ids[position + 1] if position + 1 < len(ids) else None
        return ids[0] if ids else None

    def review_page(
        self, request: Request, order_id: int, nonce: str, *, submitted: FormError | None = None
    ) -> Response:
        """The review page; ``submitted``: the editor's lines could not be read, shown again with the bad cell."""
        with self.connections.connection() as connection:
            models = _done_models(connection, order_id)
            lines = items.read_items(connection, [order_id], models) if models else {}
            truth = ground_truth.read_ground_truth(connection, [order_id]).get(order_id)
            saved_by, saved_at = ground_truth.saved_by_and_when(connection, order_id)
            versions = ground_truth.ground_truth_versions(connection, order_id)
            replaces = ground_truth.version_marker(connection, order_id)
            previews = {
                version.id: ground_truth.version_lines(connection, order_id, version.id) for version in versions
            }
            warnings = _stored_warnings(connection, order_id)
            shown = evidence.order_line_evidence(connection, order_id)
        if not models and truth is None:
            raise NotFound(f"order {order_id} has no finished extraction and no ground truth")
        start = request.arg("from") or ("truth" if truth is not None else (models[0] if models else "truth"))
        if start != "truth" and start not in models:
            raise BadRequest(f"from must be 'truth' or one of the models that finished the order: {', '.join(models)}")
        starting = truth if start == "truth" else lines.get((order_id, start), [])
        model_views = [
            {
                "llm": llm,
                "invoices": lines.get((order_id, llm), []),
                "marks": arithmetic_marks(lines.get((order_id, llm), [])),
                "line_warnings": _line_messages(
                    arithmetic_marks(lines.get((order_id, llm), [])), warnings.get(llm, {})
                ),
                "warnings": warnings.get(llm, {}).get(None, []),
                "evidence": {key[1:]: line for key, line in shown.items() if key[0] == llm},
            }
            for llm in models
        ]
        start_evidence = {key[1:]: line for key, line in shown.items() if key[0] == start}
        editor = editor_lines(starting or [], start_evidence)
        if submitted is not None:
            editor = _submitted_lines(request.form, submitted)
        current_lines = editor_lines(truth or [])
        response = self._render(
            "review.html",
            nonce,
            order_id=order_id,
            invoices=self.invoice_views(order_id),
            models=model_views,
            start=start,
            editor=editor,
            form_error=None if submitted is None else str(submitted),
            places={index: currency_decimals(code) for index, code in _currencies(starting or [], model_views).items()},
            previews={key: _version_preview(found, current_lines) for key, found in previews.items()},
            restored=_restored(request.arg("restored"), versions),
            currencies=_currencies(starting or [], model_views),
            truth=truth,
            saved_by=saved_by,
            saved_at=saved_at,
            versions=versions,
            replaces=replaces,
            reviewer=self.reviewer,
            saved=request.arg("saved"),
            next_order=self._next_order(order_id),
        )
        if submitted is not None:
            return Response("400 Bad Request", response.body)
        return response

    def save(self, request: Request, order_id: int, nonce: str = "") -> Response:
        """The reviewer is the server's (``--reviewer``), never a form field. ``replaces`` (sent by the editor): the
        version the reviewer started from; a save after another one is a conflict, not a silent overwrite."""
        try:
            invoices = parse_ground_truth_form(request.form)
        except FormError as error:  # the editor comes back with what was typed and the cell marked
            return self.review_page(request, order_id, nonce, submitted=error)
        based_on = request.form.get("replaces")
        replaces = {order_id: based_on[0]} if based_on else None
        with self.connections.connection() as connection, _refused_values():
            written = ground_truth.load_ground_truth(
                connection, {order_id: invoices}, saved_by=self.reviewer, replaces=replaces
            )
        return Response("303 See Other", b"", headers=[("Location", f"/review/{order_id}?saved={written}")])

    def restore(self, request: Request, order_id: int) -> Response:
        version = _int((request.form.get("version") or [""])[0], "version", 1, 2**63 - 1)
        with self.connections.connection() as connection, _refused_values():
            try:
                written = ground_truth.restore_ground_truth(connection, order_id, version, saved_by=self.reviewer)
            except LookupError as error:
                raise NotFound(str(error)) from None
        location = f"/review/{order_id}?saved={written}&restored={version}"
        return Response("303 See Other", b"", headers=[("Location", location)])

    # -- images ---------------------------------------------------------------------------------------------

    def _prepared(self, order_id: int) -> list[tuple[str | None, tuple[bytes, ...], str | None]]:
        """Per invoice of the order: (location, JPEG segments, error); cached for the last few orders."""
        with self._images_lock:
            if order_id in self._images:
                self._images.move_to_end(order_id)
                return self._images[order_id]
        with self.connections.connection() as connection:
            try:
                value = orders.read_invoice_image(connection, order_id)
            except PipelineError:
                value = None
        prepared: list[tuple[str | None, tuple[bytes, ...], str | None]] = []
        try:
            locations = urls.parse_invoice_image(value, self.settings.allowed_buckets)
        except PipelineError as error:
            prepared.append((None, (), f"images not shown: {error}"))
            locations = []
        for location in locations:
            try:
                data = self.fetch_image(location, max_bytes=self.settings.max_image_bytes)
                segments = tuple(segment.data for segment in images.prepare_invoice(data, source=str(location)))
                prepared.append((str(location), segments, None))
            except Exception as error:  # any S3 or image error is shown in place of the image
                prepared.append((str(location), (), f"{type(error).__name__}: {error}"))
        with self._images_lock:
            self._images[order_id] = prepared
            while len(self._images) > IMAGE_CACHE_ORDERS:
                self._images.popitem(last=False)
        return prepared

    def invoice_views(self, order_id: int) -> list[InvoiceView]:
        return [
            InvoiceView(index, location, len(segments), error)
            for index, (location, segments, error) in enumerate(self._prepared(order_id))
        ]

    def image(self, order_id: int, invoice_index: int, segment: int) -> Response:
        prepared = self._prepared(order_id)
        if invoice_index >= len(prepared) or segment >= len(prepared[invoice_index][1]):
            raise NotFound(f"order {order_id} has no image {invoice_index}/{segment}")
        return Response("200 OK", prepared[invoice_index][1][segment], "image/jpeg")


# --------------------------------------------------------------------------------------------------- helpers


def _done_jobs(connection: Any, order_id: int) -> list[ledger_reads.JobOutcome]:
    return [job for job in ledger_reads.order_outcomes(connection, order_id).values() if job.status == JobStatus.DONE]


def _done_models(connection: Any, order_id: int) -> list[str]:
    return [job.llm for job in _done_jobs(connection, order_id)]


def _stored_warnings(connection: Any, order_id: int) -> dict[str, dict[tuple[int, int] | None, list[str]]]:
    """Per model: each line's validation warnings by (invoice_index, line_no); None holds the invoice-wide ones."""
    found: dict[str, dict[tuple[int, int] | None, list[str]]] = {}
    for job in _done_jobs(connection, order_id):
        if not isinstance(job.warnings, list):
            continue
        by_line = found.setdefault(job.llm, {})
        for entry in job.warnings:
            message = str(entry.get("message", entry)) if isinstance(entry, dict) else str(entry)
            line_no = entry.get("line_no") if isinstance(entry, dict) else None
            key = (int(entry.get("invoice_index") or 0), int(line_no)) if isinstance(line_no, int) else None
            by_line.setdefault(key, []).append(message)
    return found


def _line_messages(
    marks: dict[tuple[int, int], str], stored: dict[tuple[int, int] | None, list[str]]
) -> dict[tuple[int, int], list[str]]:
    """Each line's messages once: the arithmetic found now, then the stored warnings that say something else."""
    found: dict[tuple[int, int], list[str]] = {}
    for key in {*marks, *(key for key in stored if key is not None)}:
        messages = [marks[key]] if key in marks else []
        messages += [message for message in stored.get(key, []) if message not in messages]
        found[key] = messages
    return found


# Which editor cells a failed check marks.
CHECK_FIELDS = {
    "arithmetic": ("quantity", "unit_price", "line_total"),
    "printed": ("quantity", "unit_price", "line_total"),
    "agreement": ("quantity", "unit_price", "line_total"),
    "clean_description": ("description",),
}


def _submitted_lines(form: dict[str, list[str]], error: FormError) -> list[dict[str, Any]]:
    """The editor's lines as typed, the unreadable cell marked."""
    count = len(form.get("invoice_index", []))
    found = []
    for position in range(count):
        line: dict[str, Any] = {
            name: (form.get(name) or [""] * count)[position] if position < len(form.get(name, [])) else ""
            for name in ("invoice_index", *LINE_FIELDS)
        }
        line.update(trust=None, failed=(), page=None, bbox=None, bad_fields=())
        if position == error.position:
            line["bad_fields"] = (error.field,)
            line["error"] = str(error)
        found.append(line)
    return found


def _version_preview(lines: list[dict[str, Any]], current: list[dict[str, Any]]) -> dict[str, Any]:
    """A version's lines and how many differ from the current ground truth (added or removed, by value)."""
    fields = ("invoice_index", *LINE_FIELDS)

    def key(line: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(line.get(name) or "") for name in fields)

    theirs, ours = [key(line) for line in lines], [key(line) for line in current]
    only_theirs = sum(1 for line in theirs if line not in ours)
    only_ours = sum(1 for line in ours if line not in theirs)
    return {"lines": lines, "added": only_theirs, "removed": only_ours}


def _restored(raw: str | None, versions: list[ground_truth.GroundTruthVersion]) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        wanted = int(raw)
    except ValueError:
        return None
    version = next((version for version in versions if version.id == wanted), None)
    if version is None:
        return {"id": wanted, "saved_by": None, "saved_at": None}
    return {"id": wanted, "saved_by": version.saved_by, "saved_at": version.saved_at}


def filter_choices(connection: Any) -> dict[str, list[Any]]:
    return {
        "restaurants": comparison.restaurants(connection),
        "llms": ledger_reads.models(connection),
    }


def _int(raw: str, what: str, least: int | None = None, most: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:  # also a number of more than 4,300 digits
        raise BadRequest(f"{what} must be an integer, got {raw[:30]!r}") from None
    if (least is not None and value < least) or (most is not None and value > most):
        raise BadRequest(f"{what} must be between {least} and {most}, got {raw[:30]}")
    return value


@contextmanager
def _refused_values() -> Iterator[None]:
    """What the ground truth refuses (out of range, a conflict, a value Postgres refuses as data: SQLSTATE class
    22) as the user's error, never a 500."""
    from pg8000.native import DatabaseError

    try:
        yield
    except ground_truth.GroundTruthInvalid as error:
        raise BadRequest(str(error)) from None
    except ground_truth.GroundTruthConflict as error:
        raise Conflict(str(error)) from None
    except DatabaseError as error:
        fields = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
        if not str(fields.get("C", "")).startswith("22"):
            raise
        raise BadRequest(f"the database refused a value: {describe(error)}") from None


def _currencies(starting: list[ExtractedInvoice], models: list[dict[str, Any]]) -> dict[int, str]:
    found: dict[int, str] = {}
    for invoices in [starting, *(view["invoices"] for view in models)]:
        for invoice in invoices:
            if invoice.currency:
                found.setdefault(invoice.invoice_index, invoice.currency)
    return found


def _text(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def editor_lines(
    invoices: list[ExtractedInvoice], shown: dict[tuple[int, int], evidence.ShownLine] | None = None
) -> list[dict[str, Any]]:
    """The editor's lines; with the evidence of the model they start from: trust, failed checks, the cells those
    checks mark, and where the line was read (for the highlight on the image)."""
    found = []
    for invoice in invoices:
        for line_no, item in enumerate(invoice.items, start=1):
            line = (shown or {}).get((invoice.invoice_index, line_no))
            failed = line.failed if line is not None else ()
            bad = {name for check in failed for name in CHECK_FIELDS.get(check, ())}
            if "numbers_present" in failed:
                bad |= {name for name in NUMERIC_LINE_FIELDS if getattr(item, name) is None}
            found.append(
                {
                    "invoice_index": invoice.invoice_index,
                    "description": item.description or "",
                    "quantity": _text(item.quantity),
                    "unit": item.unit or "",
                    "unit_price": _text(item.unit_price),
                    "line_total": _text(item.line_total),
                    "trust": None if line is None else line.trust,
                    "failed": failed,
                    "page": None if line is None else line.page,
                    "bbox": None if line is None else line.bbox,
                    "bad_fields": tuple(sorted(bad)),
                }
            )
    return found


def comparison_context(rows: list[dict[str, Any]], scope: comparison.ComparisonFilter) -> dict[str, Any]:
    """What the comparison template needs, for the live page and the exported report alike."""
    return {
        "rows": rows,
        "scope": scope,
        "fields": LINE_FIELDS,
        "colours": {row["llm"]: plots.colour(index) for index, row in enumerate(rows)},
        "plot_accuracy_cost": plots.accuracy_vs_cost(rows),
        "plot_agreement": plots.agreement_matrix(rows),
        "plot_items": plots.items_per_invoice(rows),
    }


def templates() -> Environment:
    return Environment(
        loader=PackageLoader("invoices_cli.workbench", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report_html(rows: list[dict[str, Any]], scope: comparison.ComparisonFilter, generated: str) -> str:
    """The comparison page as one self-contained file: inline CSS and SVG, no script, nothing to fetch."""
    return (
        templates()
        .get_template("comparison.html")
        .render(
            standalone=True, nonce="", csrf="", generated=generated, choices=None, **comparison_context(rows, scope)
        )
    )
