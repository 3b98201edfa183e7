"""What every page of the shop shares: its templates, the database of a request, rendering with the
signed-in customer and cart count, sign-in redirects, product URLs and pagination."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from envs.sites.common import (
    Pagination,
    connect,
    flash,
    page_number,
    pop_flashes,
    query_with,
    redirect,
    session_user_id,
    templates_for,
)

SITE_NAME = "Harbor Lane Market"
PACKAGE_DIR = Path(__file__).parent
PER_PAGE = 12
ADDRESS_FIELDS = ["first_name", "last_name", "phone", "street", "city", "state", "zip"]
PRODUCT_QUERY = """
SELECT p.*, c.name AS category_name, c.slug AS category_slug,
       COALESCE(AVG(r.rating), 0) AS rating, COUNT(r.id) AS review_count
FROM products p JOIN categories c ON c.id = p.category_id LEFT JOIN reviews r ON r.product_id = p.id
{where} GROUP BY p.id
"""

templates = templates_for(PACKAGE_DIR)
templates.env.filters["money"] = lambda cents: f"${cents / 100:,.2f}"
templates.env.filters["day"] = lambda iso: datetime.fromisoformat(iso).strftime("%b %-d, %Y")
templates.env.globals["site_name"] = SITE_NAME
templates.env.globals["query_with"] = query_with


@contextmanager
def database(request: Request) -> Iterator[sqlite3.Connection]:
    """One connection per request, committed when the handler succeeds and always closed."""
    conn = connect(request.app.state.db_path)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def render(request: Request, conn: sqlite3.Connection, name: str, status_code: int = 200, **context: Any) -> Response:
    """A page with what every page shows: the signed-in customer, cart count, categories, messages."""
    user = current_user(request, conn)
    cart_count = 0
    if user is not None:
        cart_count = conn.execute(
            "SELECT COALESCE(SUM(quantity), 0) FROM cart_items WHERE customer_id = ?", (user["id"],)
        ).fetchone()[0]
    context.setdefault("breadcrumbs", [])
    context.setdefault("query", "")
    context.update(
        user=user,
        cart_count=cart_count,
        nav_categories=conn.execute("SELECT slug, name FROM categories ORDER BY id").fetchall(),
        flashes=pop_flashes(request),
    )
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def current_user(request: Request, conn: sqlite3.Connection) -> sqlite3.Row | None:
    user_id = session_user_id(request)
    if user_id is None:
        return None
    return conn.execute("SELECT * FROM customers WHERE id = ?", (user_id,)).fetchone()


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return login_redirect_to(request, target)


def login_redirect_to(request: Request, target: str) -> Response:
    """To the sign-in page, coming back to target afterwards."""
    flash(request, "Please sign in to continue.", "info")
    return redirect(f"/login?{urlencode({'next': target})}")


def product_url(product: sqlite3.Row) -> str:
    return f"/product/{product['id']}-{product['slug']}"


def paginate(request: Request, items: list[Any]) -> tuple[Pagination, list[Any]]:
    pagination = Pagination(page=page_number(request.query_params.get("page")), per_page=PER_PAGE, total=len(items))
    if pagination.page > pagination.pages:
        pagination = Pagination(page=pagination.pages, per_page=PER_PAGE, total=len(items))
    return pagination, items[pagination.offset : pagination.offset + PER_PAGE]


templates.env.globals["product_url"] = product_url
