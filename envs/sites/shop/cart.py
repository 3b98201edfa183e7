"""The shop's cart and what follows from it: checkout, and the customer's orders (view, cancel)."""
from __future__ import annotations

import sqlite3
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from envs.sites.common import flash, redirect
from envs.sites.shop.seed import SHIPPING_METHODS, STORE_TODAY, order_number
from envs.sites.shop.web import (
    ADDRESS_FIELDS,
    current_user,
    database,
    login_redirect,
    login_redirect_to,
    paginate,
    product_url,
    render,
)

CANCELLABLE = ("Pending", "Processing")


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
