"""The shop: a WebArena-style online store (catalog, search, reviews, cart, checkout, orders, account)."""
from envs.sites.shop.seed import CUSTOMERS

# (username, password, role) of every account that can sign in; emails (username@example.com) work too.
ACCOUNTS: list[tuple[str, str, str]] = [(c.username, c.password, "customer") for c in CUSTOMERS]
