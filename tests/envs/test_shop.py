"""The shop site: its seeded data, catalog, search, product pages, cart, checkout, orders and
account, over HTTP, plus one full purchase in headless Chromium."""
from __future__ import annotations

import re
import sqlite3

import httpx
import pytest
import pytest_asyncio

from envs.browser import BrowserSession
from envs.sites.server import SiteServer, login, login_storage_state

ADDRESS = {"first_name": "Emma", "last_name": "Lopez", "street": "77 Ocean Drive", "city": "Miami", "state": "FL",
           "zip": "33139", "phone": "(305) 555-0100"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    with SiteServer("shop", cache_dir=tmp_path_factory.mktemp("site-cache")) as server:
        yield server


@pytest.fixture
def db(shop):
    shop.reset()
    conn = sqlite3.connect(shop.db_path)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


@pytest.fixture
def guest(shop, db):
    with httpx.Client(base_url=shop.url, follow_redirects=True, timeout=10) as client:
        yield client


@pytest.fixture
def emma(guest):
    response = guest.post("/login", data={"username": "emma.lopez", "password": "Maple-412"})
    assert "Welcome, Emma Lopez!" in response.text
    return guest


def prices(html: str) -> list[float]:
    return [float(p.replace(",", "")) for p in re.findall(r'<span class="price">\$([\d,.]+)</span>', html)]


def product_names(html: str) -> list[str]:
    return re.findall(r'class="product-name" href="[^"]+">([^<]+)</a>', html)


def cart_rows(client: httpx.Client) -> dict[int, int]:
    """product id -> quantity, as the cart page shows them."""
    html = client.get("/cart").text
    return {int(pid): int(qty) for pid, qty in
            re.findall(r'data-product-id="(\d+)">.*?name="quantity" type="number" min="0" value="(\d+)"', html, re.S)}


def test_seed_has_a_realistic_catalog_and_customers(db):
    count = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    assert count("SELECT COUNT(*) FROM categories") == 10
    assert count("SELECT COUNT(*) FROM products") == 200
    assert count("SELECT MIN(n) FROM (SELECT COUNT(*) AS n FROM products GROUP BY category_id)") >= 15
    assert count("SELECT COUNT(*) FROM reviews") == 600
    assert count("SELECT COUNT(DISTINCT rating) FROM reviews") == 5
    assert count("SELECT COUNT(*) FROM products WHERE stock = 0") > 0
    assert count("SELECT COUNT(DISTINCT name) FROM products") == 200
    orders_per_customer = [row[0] for row in db.execute(
        "SELECT COUNT(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id")]
    assert max(orders_per_customer) >= 3 and 0 in orders_per_customer
    assert count("SELECT COUNT(DISTINCT status) FROM orders") >= 4
    assert count("SELECT COUNT(*) FROM orders WHERE total_cents != subtotal_cents + shipping_cents") == 0
    assert count("SELECT COUNT(*) FROM orders o WHERE subtotal_cents != "
                 "(SELECT SUM(price_cents * quantity) FROM order_items WHERE order_id = o.id)") == 0


def test_category_pages_paginate_and_sort(guest):
    first = guest.get("/category/electronics?sort=price_asc")
    assert "Items 1-12 of 20" in first.text
    assert first.text.count('class="product-item"') == 12
    second = guest.get("/category/electronics?sort=price_asc&page=2")
    assert "Items 13-20 of 20" in second.text
    listed = prices(first.text) + prices(second.text)
    assert listed == sorted(listed) and len(listed) == 20
    assert 'href="?sort=price_asc&amp;page=2"' in first.text  # pagination keeps the sort
    assert guest.get("/category/no-such-category").status_code == 404


def test_search_matches_every_word_and_sorts(guest, db):
    expected = db.execute("SELECT COUNT(*) FROM products WHERE name LIKE '%Wireless Headphones%'").fetchone()[0]
    response = guest.get("/search", params={"q": "wireless headphones", "sort": "price_desc"})
    names = product_names(response.text)
    assert f"{expected} result" in response.text and len(names) == min(expected, 12)
    assert all("Wireless Headphones" in name for name in names)
    assert prices(response.text) == sorted(prices(response.text), reverse=True)
    assert 'name="q" value="wireless headphones"' in response.text  # the box shows the query, as in WebArena
    assert "Your search returned no results." in guest.get("/search", params={"q": "xylophone"}).text


def test_product_page_shows_price_stock_and_reviews(guest, db):
    product = db.execute(
        "SELECT p.*, COUNT(r.id) AS n FROM products p JOIN reviews r ON r.product_id = p.id "
        "WHERE p.stock > 0 GROUP BY p.id ORDER BY n DESC, p.id LIMIT 1").fetchone()
    response = guest.get(f"/product/{product['id']}")  # redirected to the canonical, slugged URL
    assert str(response.url).endswith(f"/product/{product['id']}-{product['slug']}")
    html = response.text
    assert f'<h1 class="product-title">{product["name"]}</h1>' in html
    assert f'id="product-price">${product["price_cents"] / 100:,.2f}<' in html
    assert f"In stock ({product['stock']} available)" in html
    assert html.count('class="review"') == product["n"] >= 5
    for author in {row[0] for row in db.execute("SELECT author FROM reviews WHERE product_id = ?", (product["id"],))}:
        assert f'class="review-author">{author}<' in html
    sold_out = db.execute("SELECT id, slug FROM products WHERE stock = 0 LIMIT 1").fetchone()
    sold_out_html = guest.get(f"/product/{sold_out[0]}-{sold_out[1]}").text
    assert "Out of stock" in sold_out_html and "Add to Cart" not in sold_out_html


def test_account_pages_send_guests_to_login_and_back(guest):
    for path in ["/cart", "/orders", "/account", "/checkout", "/orders/000000101"]:
        response = guest.get(path)
        assert response.url.path == "/login" and response.url.params["next"] == path
    refused = guest.post("/login", data={"username": "emma.lopez", "password": "wrong", "next": "/orders"})
    assert "The username or password is incorrect" in refused.text
    accepted = guest.post("/login", data={"username": "emma.lopez@example.com", "password": "Maple-412",
                                          "next": "/orders"})
    assert accepted.url.path == "/orders" and "Welcome, Emma Lopez!" in accepted.text
    assert "Sign In" in guest.get("/logout").text


def test_cart_add_change_quantity_and_remove(emma, db):
    seeded = cart_rows(emma)
    assert len(seeded) == 2  # Emma's cart was seeded with two items
    product = db.execute("SELECT id, stock FROM products WHERE stock BETWEEN 5 AND 100 "
                         "AND id NOT IN (SELECT product_id FROM cart_items) LIMIT 1").fetchone()
    added = emma.post("/cart/add", data={"product_id": product["id"], "quantity": "2"})
    assert "to your shopping cart" in added.text
    assert cart_rows(emma) == {**seeded, product["id"]: 2}
    assert f'class="cart-count">{sum(seeded.values()) + 2}<' in emma.get("/cart").text
    emma.post("/cart/update", data={"product_id": product["id"], "quantity": "4"})
    assert cart_rows(emma)[product["id"]] == 4
    too_many = emma.post("/cart/update", data={"product_id": product["id"], "quantity": str(product["stock"] + 1)})
    assert f"only {product['stock']} of" in too_many.text and cart_rows(emma)[product["id"]] == 4
    emma.post("/cart/remove", data={"product_id": product["id"]})
    assert cart_rows(emma) == seeded


def test_checkout_validates_then_places_an_order(emma, db):
    cart = cart_rows(emma)
    stock_before = {pid: db.execute("SELECT stock FROM products WHERE id = ?", (pid,)).fetchone()[0] for pid in cart}
    missing_street = emma.post("/checkout", data={**ADDRESS, "street": "", "shipping_method": "express"})
    assert "This is a required field." in missing_street.text and "/checkout/success" not in str(missing_street.url)

    placed = emma.post("/checkout", data={**ADDRESS, "shipping_method": "express"})
    number = re.search(r'class="order-number" href="/orders/(\d+)"', placed.text).group(1)
    order = emma.get(f"/orders/{number}").text
    assert 'id="order-status" class="order-status">Pending<' in order
    assert "77 Ocean Drive" in order and "Miami, FL 33139" in order
    subtotal, shipping, total = (float(re.search(rf'id="order-{key}">\$([\d,.]+)<', order).group(1).replace(",", ""))
                                 for key in ("subtotal", "shipping", "total"))
    assert shipping == 14.99 and total == pytest.approx(subtotal + shipping)
    assert order.count('class="order-item"') == len(cart)
    history = emma.get("/orders").text
    assert re.search(rf'data-order-number="{number}">\s*<td class="order-number">{number}</td>', history)
    assert history.index(number) < history.index("000000101")  # newest first
    assert cart_rows(emma) == {}
    for pid, quantity in cart.items():
        stock = db.execute("SELECT stock FROM products WHERE id = ?", (pid,)).fetchone()[0]
        assert stock == stock_before[pid] - quantity


def test_pending_orders_can_be_canceled_completed_ones_cannot(emma, db):
    pending = db.execute("SELECT number FROM orders WHERE customer_id = 1 AND status = 'Pending'").fetchone()[0]
    complete = db.execute("SELECT number FROM orders WHERE customer_id = 1 AND status = 'Complete'").fetchone()[0]
    assert "has been canceled" in emma.post(f"/orders/{pending}/cancel").text
    assert re.search(rf'{pending}</td>.*?class="order-status">Canceled<', emma.get("/orders").text, re.S)
    refused = emma.post(f"/orders/{complete}/cancel").text
    assert "can no longer be canceled" in refused and 'class="order-status">Complete<' in refused
    other_customers_order = db.execute("SELECT number FROM orders WHERE customer_id != 1").fetchone()[0]
    assert emma.get(f"/orders/{other_customers_order}").status_code == 404


def test_account_edit_saves_and_validates(emma):
    form = {**ADDRESS, "email": "emma.l@example.org"}
    saved = emma.post("/account", data=form)
    assert "You saved the account information." in saved.text
    assert 'id="account-email">emma.l@example.org<' in saved.text and "Miami, FL 33139" in saved.text
    invalid = emma.post("/account", data={**form, "email": "not-an-email", "city": "Tampa"})
    assert "Please enter a valid email address." in invalid.text
    assert "Miami, FL 33139" in emma.get("/account").text  # nothing saved from the invalid form


def test_signed_in_customers_can_review_a_product(emma, db):
    slug = db.execute("SELECT slug FROM products WHERE id = 9").fetchone()[0]
    before = emma.get(f"/product/9-{slug}").text.count('class="review"')
    page = emma.post("/product/9/reviews", data={"rating": "2", "title": "Too loud", "body": "Fan noise."}).text
    assert "Thank you for your review." in page and page.count('class="review"') == before + 1
    assert 'class="review-author">Emma L.<' in page


@pytest_asyncio.fixture(scope="module")
async def browser():
    async with BrowserSession() as session:
        yield session


async def test_a_customer_buys_a_product_in_chromium(browser, shop):
    shop.reset()
    await browser.new_context()
    page = browser.page
    await login(page, "shop", shop.url, "noah.kim")  # the password comes from the site's ACCOUNTS
    assert await page.text_content(".welcome") == "Welcome, Noah Kim!"

    await page.fill("#search", "whole bean coffee")
    await page.click("form.search-form button")
    await page.wait_for_url("**/search?q=whole+bean+coffee")
    product_name = (await page.text_content(".product-list .product-name")).strip()
    await page.click(".product-list .product-name")
    await page.fill("#quantity", "2")
    await page.click("text=Add to Cart")
    await page.wait_for_selector(".message-success")
    await page.click("#cart-link")
    assert await page.text_content(".cart-item .item-name") == product_name
    assert await page.input_value(".cart-item input[name=quantity]") == "2"

    await page.click("text=Proceed to Checkout")
    await page.check("#shipping-pickup")
    await page.click("#place-order")
    await page.wait_for_url("**/checkout/success/*")
    number = await page.text_content("#order-confirmation .order-number")

    await page.click("text=My Orders")
    first_row = page.locator("#orders-table tbody tr").first
    assert await first_row.locator(".order-number").text_content() == number
    assert await first_row.locator(".order-status").text_content() == "Pending"
    # What a WebArena program_html evaluator would run against this page:
    assert await page.evaluate("document.querySelector('#orders-table .order-row').dataset.orderNumber") == number
    await browser.close_context()


async def test_storage_state_signs_a_new_context_in(browser, shop):
    with pytest.raises(ValueError, match="no account 'olivia' on site 'shop'; accounts: emma.lopez, "):
        await login_storage_state(browser.browser, "shop", shop.url, "olivia")
    with pytest.raises(RuntimeError, match="could not log in .* as 'olivia.patel': the site rejected"):
        await login_storage_state(browser.browser, "shop", shop.url, "olivia.patel", "wrong password")
    state = await login_storage_state(browser.browser, "shop", shop.url, "olivia.patel")
    await browser.new_context(storage_state=state)
    await browser.page.goto(shop.url + "/orders")
    assert browser.page.url.endswith("/orders")
    assert await browser.page.locator(".order-row").count() == 3
    await browser.close_context()
