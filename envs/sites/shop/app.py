"""The shop: a small WebArena-style store. Catalog, search, product pages with reviews, cart,
checkout, order history and account, server-rendered from a SQLite database (see seed.py).

This module wires the routes and serves the catalog, reviews, the account and signing in; cart.py
serves the cart, checkout and orders, and web.py holds what every page shares.
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from envs.sites.common import check_password, flash, log_in, log_out, redirect, safe_next, session_middleware
from envs.sites.shop.cart import (
    cancel_order,
    cart_add,
    cart_page,
    cart_remove,
    cart_update,
    checkout_page,
    checkout_success,
    order_page,
    orders_page,
)
from envs.sites.shop.seed import STORE_TODAY
from envs.sites.shop.web import (
    ADDRESS_FIELDS,
    PACKAGE_DIR,
    PRODUCT_QUERY,
    current_user,
    database,
    login_redirect,
    login_redirect_to,
    paginate,
    product_url,
    render,
)

SORTS = {  # code: label
    "relevance": "Relevance",
    "name": "Name",
    "price_asc": "Price: Low to High",
    "price_desc": "Price: High to Low",
    "rating": "Customer Rating",
    "newest": "Newest Arrivals",
}


def create_app(db_path: Path) -> Starlette:
    """The shop's ASGI app over the SQLite database at db_path (seeded by seed.seed)."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise FileNotFoundError(f"no shop database at {db_path}: create it with envs.sites.shop.seed.seed(path)")
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/category/{slug}", category_page),
            Route("/search", search_page),
            Route("/product/{ref}", product_page),
            Route("/product/{product_id:int}/reviews", add_review, methods=["POST"]),
            Route("/cart", cart_page),
            Route("/cart/add", cart_add, methods=["POST"]),
            Route("/cart/update", cart_update, methods=["POST"]),
            Route("/cart/remove", cart_remove, methods=["POST"]),
            Route("/checkout", checkout_page, methods=["GET", "POST"]),
            Route("/checkout/success/{number}", checkout_success),
            Route("/orders", orders_page),
            Route("/orders/{number}", order_page),
            Route("/orders/{number}/cancel", cancel_order, methods=["POST"]),
            Route("/account", account_page, methods=["GET", "POST"]),
            Route("/login", login_page, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["GET", "POST"]),
            Mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static"),
        ],
        middleware=[session_middleware("shop")],
        exception_handlers={404: not_found},
    )
    app.state.db_path = db_path
    return app


def sort_products(products: list[sqlite3.Row], sort: str, scores: dict[int, int] | None = None) -> list[sqlite3.Row]:
    if sort == "relevance" and scores is not None:
        return sorted(products, key=lambda p: (-scores[p["id"]], p["name"]))
    if sort == "price_asc":
        return sorted(products, key=lambda p: (p["price_cents"], p["name"]))
    if sort == "price_desc":
        return sorted(products, key=lambda p: (-p["price_cents"], p["name"]))
    if sort == "rating":
        return sorted(products, key=lambda p: (-round(p["rating"], 1), -p["review_count"], p["name"]))
    if sort == "newest":
        return sorted(products, key=lambda p: (p["added_on"], p["id"]), reverse=True)
    return sorted(products, key=lambda p: p["name"])


# --- catalog ---------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    with database(request) as conn:
        categories = conn.execute(
            "SELECT c.*, COUNT(p.id) AS product_count FROM categories c JOIN products p ON p.category_id = c.id "
            "GROUP BY c.id ORDER BY c.id"
        ).fetchall()
        rated = conn.execute(PRODUCT_QUERY.format(where="WHERE p.stock > 0")).fetchall()
        featured = [p for p in sort_products(rated, "rating") if p["review_count"] >= 3][:8]
        return render(request, conn, "home.html", categories=categories, featured=featured)


async def category_page(request: Request) -> Response:
    sort = request.query_params.get("sort", "name")
    if sort not in SORTS or sort == "relevance":
        sort = "name"
    with database(request) as conn:
        category = conn.execute("SELECT * FROM categories WHERE slug = ?", (request.path_params["slug"],)).fetchone()
        if category is None:
            raise HTTPException(404)
        products = conn.execute(PRODUCT_QUERY.format(where="WHERE p.category_id = ?"), (category["id"],)).fetchall()
        pagination, shown = paginate(request, sort_products(products, sort))
        return render(
            request, conn, "category.html", category=category, products=shown, pagination=pagination, sort=sort,
            sorts={k: v for k, v in SORTS.items() if k != "relevance"},
            breadcrumbs=[("Home", "/"), (category["name"], None)],
        )


async def search_page(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()
    sort = request.query_params.get("sort", "relevance")
    if sort not in SORTS:
        sort = "relevance"
    words = [w for w in re.split(r"\W+", query.lower()) if w]
    with database(request) as conn:
        matches: list[sqlite3.Row] = []
        scores: dict[int, int] = {}
        if words:
            for product in conn.execute(PRODUCT_QUERY.format(where="")).fetchall():
                name = product["name"].lower()
                haystack = " ".join([name, product["brand"], product["description"], product["category_name"],
                                     product["sku"]]).lower()
                if all(w in haystack for w in words):
                    matches.append(product)
                    scores[product["id"]] = sum(2 if w in name else 1 for w in words)
        pagination, shown = paginate(request, sort_products(matches, sort, scores))
        return render(
            request, conn, "search.html", query=query, products=shown, pagination=pagination, sort=sort,
            sorts=SORTS, breadcrumbs=[("Home", "/"), (f"Search results for '{query}'", None)],
        )


async def product_page(request: Request) -> Response:
    match = re.fullmatch(r"(\d+)(?:-([a-z0-9-]*))?", request.path_params["ref"])
    if match is None:
        raise HTTPException(404)
    with database(request) as conn:
        product = conn.execute(PRODUCT_QUERY.format(where="WHERE p.id = ?"), (int(match.group(1)),)).fetchone()
        if product is None:
            raise HTTPException(404)
        if match.group(2) != product["slug"]:
            return redirect(product_url(product))  # one canonical URL per product
        reviews = conn.execute(
            "SELECT * FROM reviews WHERE product_id = ? ORDER BY created_on DESC, id DESC", (product["id"],)
        ).fetchall()
        return render(
            request, conn, "product.html", product=product, reviews=reviews, review_errors={}, review_form={},
            breadcrumbs=[("Home", "/"), (product["category_name"], f"/category/{product['category_slug']}"),
                         (product["name"], None)],
        )


async def add_review(request: Request) -> Response:
    product_id = request.path_params["product_id"]
    with database(request) as conn:
        user = current_user(request, conn)
        product = conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
        if product is None:
            raise HTTPException(404)
        if user is None:
            return login_redirect_to(request, product_url(product))
        form = await request.form()
        title, body = str(form.get("title", "")).strip(), str(form.get("body", "")).strip()
        rating = str(form.get("rating", ""))
        if rating not in {"1", "2", "3", "4", "5"} or not title or not body:
            flash(request, "Please choose a rating and fill in the review title and text.", "error")
            return redirect(product_url(product) + "#write-review")
        conn.execute(
            "INSERT INTO reviews (product_id, customer_id, author, rating, title, body, created_on) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (product_id, user["id"], f"{user['first_name']} {user['last_name'][0]}.", int(rating), title, body,
             STORE_TODAY.isoformat()),
        )
        flash(request, "Thank you for your review.")
        return redirect(product_url(product) + "#reviews")


# --- account and sign-in ----------------------------------------------------------------------------------


async def account_page(request: Request) -> Response:
    with database(request) as conn:
        user = current_user(request, conn)
        if user is None:
            return login_redirect(request)
        form = {field: user[field] for field in [*ADDRESS_FIELDS, "email"]}
        errors: dict[str, str] = {}
        if request.method == "POST":
            submitted = await request.form()
            form = {key: str(submitted.get(key, "")).strip() for key in form}
            errors = {field: "This is a required field." for field, value in form.items() if not value}
            if form["email"] and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", form["email"]):
                errors["email"] = "Please enter a valid email address."
            elif conn.execute("SELECT 1 FROM customers WHERE email = ? AND id != ?",
                              (form["email"], user["id"])).fetchone():
                errors["email"] = "Another account already uses this email address."
            if not errors:
                conn.execute(
                    "UPDATE customers SET first_name = ?, last_name = ?, phone = ?, street = ?, city = ?, state = ?, "
                    "zip = ?, email = ? WHERE id = ?", (*[form[f] for f in [*ADDRESS_FIELDS, "email"]], user["id"]))
                flash(request, "You saved the account information.")
                return redirect("/account")
        recent = conn.execute("SELECT * FROM orders WHERE customer_id = ? ORDER BY id DESC LIMIT 3",
                              (user["id"],)).fetchall()
        return render(request, conn, "account.html", form=form, errors=errors,
                      recent_orders=recent, breadcrumbs=[("Home", "/"), ("My Account", None)])


async def login_page(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next"), "/account")
    with database(request) as conn:
        if request.method == "GET" and current_user(request, conn) is not None:
            return redirect(next_url)
        error, username = "", ""
        if request.method == "POST":
            form = await request.form()
            username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
            next_url = safe_next(str(form.get("next", "")), next_url)
            user = conn.execute("SELECT * FROM customers WHERE username = ? OR email = ?",
                                (username, username.lower())).fetchone()
            if user is not None and check_password(password, user["password_salt"], user["password_hash"]):
                log_in(request, user["id"])
                return redirect(next_url)
            error = "The username or password is incorrect. Please try again."
        return render(request, conn, "login.html", error=error,
                      username=username, next_url=next_url, breadcrumbs=[("Home", "/"), ("Sign In", None)])


async def logout(request: Request) -> Response:
    log_out(request)
    flash(request, "You are signed out.", "info")
    return redirect("/")


async def not_found(request: Request, exc: Exception) -> Response:
    with database(request) as conn:
        return render(request, conn, "not_found.html", status_code=404,
                      breadcrumbs=[("Home", "/"), ("Page Not Found", None)])
