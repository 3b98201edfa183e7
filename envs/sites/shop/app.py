"""The shop: a small WebArena-style store. Catalog, search, product pages with reviews, cart,
checkout, order history and account, server-rendered from a SQLite database (see seed.py)."""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from envs.sites.common import (
    Pagination,
    check_password,
    connect,
    flash,
    log_in,
    log_out,
    page_number,
    pop_flashes,
    query_with,
    redirect,
    safe_next,
    session_middleware,
    session_user_id,
    templates_for,
)
from envs.sites.shop.seed import SHIPPING_METHODS, STORE_TODAY, order_number

SITE_NAME = "Harbor Lane Market"
PACKAGE_DIR = Path(__file__).parent
PER_PAGE = 12
SORTS = {  # code: label
    "relevance": "Relevance",
    "name": "Name",
    "price_asc": "Price: Low to High",
    "price_desc": "Price: High to Low",
    "rating": "Customer Rating",
    "newest": "Newest Arrivals",
}
CANCELLABLE = ("Pending", "Processing")
ADDRESS_FIELDS = ["first_name", "last_name", "phone", "street", "city", "state", "zip"]

templates = templates_for(PACKAGE_DIR)
templates.env.filters["money"] = lambda cents: f"${cents / 100:,.2f}"
templates.env.filters["day"] = lambda iso: datetime.fromisoformat(iso).strftime("%b %-d, %Y")
templates.env.globals["site_name"] = SITE_NAME
templates.env.globals["query_with"] = query_with


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


PRODUCT_QUERY = """
SELECT p.*, c.name AS category_name, c.slug AS category_slug,
       COALESCE(AVG(r.rating), 0) AS rating, COUNT(r.id) AS review_count
FROM products p JOIN categories c ON c.id = p.category_id LEFT JOIN reviews r ON r.product_id = p.id
{where} GROUP BY p.id
"""


def product_url(product: sqlite3.Row) -> str:
    return f"/product/{product['id']}-{product['slug']}"


templates.env.globals["product_url"] = product_url


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


def paginate(request: Request, items: list[Any]) -> tuple[Pagination, list[Any]]:
    pagination = Pagination(page=page_number(request.query_params.get("page")), per_page=PER_PAGE, total=len(items))
    if pagination.page > pagination.pages:
        pagination = Pagination(page=pagination.pages, per_page=PER_PAGE, total=len(items))
    return pagination, items[pagination.offset : pagination.offset + PER_PAGE]


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


# --- cart --------------------------------------------------------------------------------------------


def cart_lines(conn: sqlite3.Connection, customer_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT p.*, ci.quantity, p.price_cents * ci.quantity AS line_cents FROM cart_items ci "
        "JOIN products p ON p.id = ci.product_id WHERE ci.customer_id = ? ORDER BY p.name",
        (customer_id,),
    ).fetchall()


async def cart_page(request: Request) -> Response:
    with database(request) as conn:
        user = current_user(request, conn)
        if user is None:
            return login_redirect(request)
        lines = cart_lines(conn, user["id"])
        return render(request, conn, "cart.html", lines=lines, subtotal=sum(line["line_cents"] for line in lines),
                      breadcrumbs=[("Home", "/"), ("Shopping Cart", None)])


def _form_int(value: Any) -> int | None:
    """A form field as an integer, None when it is not one."""
    try:
        return int(str(value))
    except ValueError:
        return None


async def cart_add(request: Request) -> Response:
    form = await request.form()
    product_id, quantity = _form_int(form.get("product_id")), _form_int(form.get("quantity", "1"))
    with database(request) as conn:
        product = conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
        if product is None:
            raise HTTPException(404)
        user = current_user(request, conn)
        if user is None:
            return login_redirect_to(request, product_url(product))
        in_cart = conn.execute("SELECT quantity FROM cart_items WHERE customer_id = ? AND product_id = ?",
                               (user["id"], product["id"])).fetchone()
        wanted = (in_cart[0] if in_cart else 0) + (quantity or 0)
        if quantity is None or quantity < 1:
            flash(request, "Please enter a quantity of at least 1.", "error")
        elif product["stock"] == 0:
            flash(request, f"Sorry, {product['name']} is out of stock.", "error")
        elif wanted > product["stock"]:
            flash(request, f"Sorry, only {product['stock']} of {product['name']} in stock.", "error")
        else:
            conn.execute(
                "INSERT INTO cart_items VALUES (?, ?, ?) "
                "ON CONFLICT (customer_id, product_id) DO UPDATE SET quantity = excluded.quantity",
                (user["id"], product["id"], wanted),
            )
            flash(request, f"You added {product['name']} to your shopping cart.")
        return redirect(product_url(product))


async def cart_update(request: Request) -> Response:
    form = await request.form()
    product_id, quantity = _form_int(form.get("product_id")), _form_int(form.get("quantity"))
    with database(request) as conn:
        user = current_user(request, conn)
        if user is None:
            return login_redirect_to(request, "/cart")
        line = conn.execute(
            "SELECT p.name, p.stock FROM cart_items ci JOIN products p ON p.id = ci.product_id "
            "WHERE ci.customer_id = ? AND ci.product_id = ?", (user["id"], product_id)).fetchone()
        if line is None:
            flash(request, "That item is no longer in your cart.", "error")
        elif quantity is None or quantity < 0:
            flash(request, "Please enter a valid quantity.", "error")
        elif quantity == 0:
            conn.execute("DELETE FROM cart_items WHERE customer_id = ? AND product_id = ?", (user["id"], product_id))
            flash(request, f"You removed {line['name']} from your shopping cart.")
        elif quantity > line["stock"]:
            flash(request, f"Sorry, only {line['stock']} of {line['name']} in stock.", "error")
        else:
            conn.execute("UPDATE cart_items SET quantity = ? WHERE customer_id = ? AND product_id = ?",
                         (quantity, user["id"], product_id))
            flash(request, f"Quantity of {line['name']} updated to {quantity}.")
        return redirect("/cart")


async def cart_remove(request: Request) -> Response:
    form = await request.form()
    product_id = _form_int(form.get("product_id"))
    with database(request) as conn:
        user = current_user(request, conn)
        if user is None:
            return login_redirect_to(request, "/cart")
        name = conn.execute("SELECT name FROM products WHERE id = ?", (product_id,)).fetchone()
        removed = conn.execute("DELETE FROM cart_items WHERE customer_id = ? AND product_id = ?",
                               (user["id"], product_id)).rowcount
        if removed and name:
            flash(request, f"You removed {name[0]} from your shopping cart.")
        return redirect("/cart")


# --- checkout and orders --------------------------------------------------------------------------------


async def checkout_page(request: Request) -> Response:
    with database(request) as conn:
        user = current_user(request, conn)
        if user is None:
            return login_redirect(request)
        lines = cart_lines(conn, user["id"])
        if not lines:
            flash(request, "Your shopping cart is empty.", "info")
            return redirect("/cart")
        subtotal = sum(line["line_cents"] for line in lines)
        form: dict[str, str] = {field: user[field] for field in ADDRESS_FIELDS}
        form["shipping_method"] = "standard"
        errors: dict[str, str] = {}
        if request.method == "POST":
            submitted = await request.form()
            form = {key: str(submitted.get(key, "")).strip() for key in [*ADDRESS_FIELDS, "shipping_method"]}
            errors = {field: "This is a required field." for field in ADDRESS_FIELDS if not form[field]}
            if form["shipping_method"] not in SHIPPING_METHODS:
                errors["shipping_method"] = "Please choose a shipping method."
            for line in lines:
                if line["quantity"] > line["stock"]:
                    errors["cart"] = f"Only {line['stock']} of {line['name']} left in stock; update your cart."
            if not errors:
                number = place_order(conn, user["id"], form, lines, subtotal)
                return redirect(f"/checkout/success/{number}")
        return render(
            request, conn, "checkout.html", lines=lines, subtotal=subtotal,
            form=form, errors=errors, shipping_methods=SHIPPING_METHODS,
            breadcrumbs=[("Home", "/"), ("Shopping Cart", "/cart"), ("Checkout", None)],
        )


def place_order(conn: sqlite3.Connection, customer_id: int, form: dict[str, str], lines: list[sqlite3.Row],
                subtotal: int) -> str:
    """Turn the cart into a Pending order, take the items out of stock, empty the cart."""
    order_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM orders").fetchone()[0]
    number = order_number(order_id)
    label, shipping = SHIPPING_METHODS[form["shipping_method"]]
    # The shop's clock is fixed (STORE_TODAY) so that runs of the same task see the same pages.
    conn.execute(
        "INSERT INTO orders VALUES (?, ?, ?, ?, 'Pending', ?, ?, ?, ?, ?, 'United States', ?, ?, ?, ?, ?)",
        (order_id, number, customer_id, f"{STORE_TODAY.isoformat()} 12:00:00",
         f"{form['first_name']} {form['last_name']}", form["street"], form["city"], form["state"], form["zip"],
         form["phone"], label, shipping, subtotal, subtotal + shipping),
    )
    for line in lines:
        conn.execute(
            "INSERT INTO order_items (order_id, product_id, name, sku, price_cents, quantity)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (order_id, line["id"], line["name"], line["sku"], line["price_cents"], line["quantity"]),
        )
        conn.execute("UPDATE products SET stock = stock - ? WHERE id = ?", (line["quantity"], line["id"]))
    conn.execute("DELETE FROM cart_items WHERE customer_id = ?", (customer_id,))
    return number


def customer_order(conn: sqlite3.Connection, request: Request, customer_id: int) -> sqlite3.Row:
    order = conn.execute("SELECT * FROM orders WHERE number = ? AND customer_id = ?",
                         (request.path_params["number"], customer_id)).fetchone()
    if order is None:
        raise HTTPException(404)
    return order


async def checkout_success(request: Request) -> Response:
    with database(request) as conn:
        user = current_user(request, conn)
        if user is None:
            return login_redirect(request)
        order = customer_order(conn, request, user["id"])
        return render(request, conn, "checkout_success.html", order=order,
                      breadcrumbs=[("Home", "/"), ("Order Confirmation", None)])


async def orders_page(request: Request) -> Response:
    with database(request) as conn:
        user = current_user(request, conn)
        if user is None:
            return login_redirect(request)
        orders = conn.execute(
            "SELECT o.*, (SELECT SUM(quantity) FROM order_items WHERE order_id = o.id) AS item_count "
            "FROM orders o WHERE customer_id = ? ORDER BY o.id DESC", (user["id"],)
        ).fetchall()
        pagination, shown = paginate(request, orders)
        return render(request, conn, "orders.html", orders=shown, pagination=pagination,
                      breadcrumbs=[("Home", "/"), ("My Account", "/account"), ("My Orders", None)])


async def order_page(request: Request) -> Response:
    with database(request) as conn:
        user = current_user(request, conn)
        if user is None:
            return login_redirect(request)
        order = customer_order(conn, request, user["id"])
        items = conn.execute(
            "SELECT oi.*, oi.price_cents * oi.quantity AS line_cents, p.slug FROM order_items oi "
            "JOIN products p ON p.id = oi.product_id WHERE order_id = ? ORDER BY oi.id", (order["id"],)
        ).fetchall()
        return render(request, conn, "order.html", order=order, items=items, cancellable=order["status"] in CANCELLABLE,
                      breadcrumbs=[("Home", "/"), ("My Account", "/account"), ("My Orders", "/orders"),
                                   (f"Order #{order['number']}", None)])


async def cancel_order(request: Request) -> Response:
    with database(request) as conn:
        user = current_user(request, conn)
        if user is None:
            return login_redirect_to(request, "/orders")
        order = customer_order(conn, request, user["id"])
        if order["status"] not in CANCELLABLE:
            flash(request, f"Order #{order['number']} is {order['status'].lower()} and can no longer be canceled.",
                  "error")
        else:
            conn.execute("UPDATE orders SET status = 'Canceled' WHERE id = ?", (order["id"],))
            conn.execute(
                "UPDATE products SET stock = stock + (SELECT SUM(quantity) FROM order_items "
                "WHERE order_id = ? AND product_id = products.id) "
                "WHERE id IN (SELECT product_id FROM order_items WHERE order_id = ?)", (order["id"], order["id"]))
            flash(request, f"Order #{order['number']} has been canceled.")
        return redirect(f"/orders/{order['number']}")


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
