"""SiteServer: seeding once, serving on an ephemeral port, resetting to pristine, running side by side."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from envs.sites.server import REPO_ROOT, SITES, SiteServer, pristine_database, site_accounts
from envs.sites.shop.seed import seed

CHECKOUT_FORM = {"first_name": "Emma", "last_name": "Lopez", "street": "412 Maple Street", "city": "Portland",
                 "state": "OR", "zip": "97205", "phone": "(503) 555-0142", "shipping_method": "standard"}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache") / "sites"  # the layout under $FORETHOUGHT_CACHE_DIR


@pytest.fixture(scope="module")
def shop(cache_dir):
    with SiteServer("shop", cache_dir=cache_dir) as server:
        yield server


def signed_in_client(server: SiteServer, username: str = "emma.lopez") -> httpx.Client:
    client = httpx.Client(base_url=server.url, follow_redirects=True, timeout=10)
    password = dict((user, secret) for user, secret, _role in server.accounts)[username]
    response = client.post("/login", data={"username": username, "password": password})
    assert "Sign Out" in response.text, "login failed"
    return client


def place_order(client: httpx.Client, product_id: int) -> str:
    client.post("/cart/add", data={"product_id": str(product_id), "quantity": "1"})
    response = client.post("/checkout", data=CHECKOUT_FORM)
    assert "/checkout/success/" in str(response.url), response.text[:500]
    return str(response.url).rsplit("/", 1)[1]


def order_numbers(client: httpx.Client) -> list[str]:
    html = client.get("/orders").text
    return [part.split('"', 1)[0] for part in html.split('data-order-number="')[1:]]


def test_serves_pages_on_an_ephemeral_port(shop):
    assert shop.url.startswith("http://127.0.0.1:") and shop.port not in (0, 80)
    home = httpx.get(shop.url + "/")
    assert home.status_code == 200 and "Shop by Category" in home.text
    assert httpx.get(shop.url + "/category/books").status_code == 200
    assert httpx.get(shop.url + "/no-such-page").status_code == 404
    assert httpx.get(shop.url + "/static/shop.css").headers["content-type"].startswith("text/css")


def test_reset_restores_the_pristine_state(shop):
    client = signed_in_client(shop)
    before = order_numbers(client)
    number = place_order(client, product_id=3)
    assert order_numbers(client) == [number, *before]

    started = time.perf_counter()
    shop.reset()
    print(f"\nreset of the shop database: {(time.perf_counter() - started) * 1000:.1f} ms")

    assert order_numbers(client) == before  # the session cookie survives, the new order does not
    assert client.get(f"/orders/{number}").status_code == 404
    with sqlite3.connect(shop.db_path) as working, sqlite3.connect(shop.pristine_path) as pristine:
        assert list(working.iterdump()) == list(pristine.iterdump())


def test_two_servers_of_one_site_run_side_by_side_with_their_own_state(shop, cache_dir):
    with SiteServer("shop", cache_dir=cache_dir) as other:
        assert other.port != shop.port and other.db_path != shop.db_path
        here, there = signed_in_client(shop), signed_in_client(other)
        before = order_numbers(there)
        number = place_order(here, product_id=7)
        assert number in order_numbers(here)
        assert order_numbers(there) == before
        # The same next order number is free on the other server: its database never saw the order.
        assert place_order(there, product_id=7) == number
    shop.reset()


def test_seed_is_deterministic(tmp_path):
    seed(tmp_path / "first.sqlite")
    seed(tmp_path / "second.sqlite")
    with sqlite3.connect(tmp_path / "first.sqlite") as first, sqlite3.connect(tmp_path / "second.sqlite") as second:
        dump = list(first.iterdump())
        assert dump == list(second.iterdump())
    assert len(dump) > 800  # hundreds of rows, not an empty schema


def test_pristine_database_is_seeded_once_and_reused(shop, cache_dir):
    path = pristine_database("shop", cache_dir)
    assert path == shop.pristine_path
    modified = path.stat().st_mtime_ns
    assert pristine_database("shop", cache_dir).stat().st_mtime_ns == modified
    assert [p.name for p in cache_dir.iterdir()] == [path.name]  # no partial files left behind


def test_wrong_site_name_lists_the_sites():
    with pytest.raises(ValueError, match="the local sites are: shop, forum, gitlab"):
        SiteServer("shopping")
    assert set(SITES) == {"shop", "forum", "gitlab"}


def test_busy_port_is_one_clear_error(cache_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = r"did not start(.|\n)*cannot listen on 127.0.0.1:\d+ \(Address already in use\)"
        with pytest.raises(RuntimeError, match=busy):
            SiteServer("shop", port=taken.getsockname()[1], cache_dir=cache_dir).start()


def test_accounts_can_log_in(shop):
    accounts = site_accounts("shop")
    assert len(accounts) >= 3 and {role for _u, _p, role in accounts} == {"customer"}
    for username, _password, _role in accounts:
        assert "My Account" in signed_in_client(shop, username).get("/account").text


def deliver_sigint() -> None:
    """In the child: Ctrl-C as at a terminal, even if the test process ignores or blocks SIGINT (a
    background job ignores it, and a library's thread may block it); both would be inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def test_serve_sites_prints_urls_and_accounts_and_stops_on_ctrl_c(cache_dir):
    script = "from envs.sites.server import serve_sites; serve_sites(['shop'])"
    env = dict(os.environ, FORETHOUGHT_CACHE_DIR=str(cache_dir.parent), PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env,
                               preexec_fn=deliver_sigint)
    try:
        lines = []
        while not lines or not lines[-1].startswith("Serving"):
            line = process.stdout.readline()
            assert line, f"serve_sites exited early: {lines}"
            lines.append(line)
        url = lines[0].split()[1]
        assert lines[0].split()[0] == "shop" and url.startswith("http://127.0.0.1:")
        assert any("customer" in line and "emma.lopez / Maple-412" in line for line in lines)
        assert httpx.get(url + "/").status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "Stopped." in process.stdout.read()
        with pytest.raises(httpx.ConnectError):  # its server process is gone too
            httpx.get(url + "/")
    finally:
        process.kill()
        process.wait()
