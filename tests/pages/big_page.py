"""A realistic large page shared by the observation tests and bench/observation.py: a shop
back-office product listing (nav, filters, bulk actions, a table of product rows each with a
checkbox, link, inputs, a select, buttons and a JS-only "Duplicate" link, pagination), written the
way real web apps are: utility classes, inline styles, data attributes, hidden tooltips."""
from __future__ import annotations

import html
import random

# Visible interactive elements (options count: each is an element the agent can pick).
NAV = ["Dashboard", "Orders", "Products", "Customers", "Reports", "Settings"]
CATEGORIES = ["Notebooks", "Pens", "Paper", "Ink", "Desk", "Art", "Gifts", "Bags"]
STATUSES = ["Active", "Draft", "Archived"]
BULK_ACTIONS = ["Publish", "Unpublish", "Delete"]
PER_ROW = 10  # checkbox, name link, price input, status select + 3 options, Edit, Delete, Duplicate
HEADER_AND_FOOTER = 42  # everything outside the product rows, before the extra pagination links
ADJECTIVES = ["Dotted", "Lined", "Recycled", "Pocket", "Leather", "Linen", "Spiral", "Kraft", "Bamboo", "Vintage"]
NOUNS = ["notebook", "fountain pen", "sketchbook", "planner", "ink bottle", "pencil case", "journal", "tote bag"]


def make_big_page(n_interactive: int = 2000, seed: int = 7) -> str:
    """HTML with exactly `n_interactive` visible interactive elements (select options included)."""
    if n_interactive < HEADER_AND_FOOTER:
        raise ValueError(f"n_interactive must be at least {HEADER_AND_FOOTER} (the page's fixed chrome)")
    rng = random.Random(seed)
    rows, extra_page_links = divmod(n_interactive - HEADER_AND_FOOTER, PER_ROW)
    parts = [_HEAD, _header(), '<div class="flex min-h-screen">', _filters(),
             '<main class="flex-1 p-6" data-testid="product-list">']
    parts.append(_toolbar(rows))
    parts.append('<table class="w-full text-sm border-collapse" data-testid="products-table"><thead>'
                 + _table_head() + "</thead><tbody>")
    parts += [_row(i, rng) for i in range(rows)]
    parts.append("</tbody></table>")
    parts.append(_pagination(extra_page_links))
    parts.append("</main></div>")
    parts.append(_FOOTER)
    return "\n".join(parts)


_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Products · Paper & Ink Admin</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font-family: system-ui, sans-serif; margin: 0; color: #1f2937; }
  .flex { display: flex; } .flex-1 { flex: 1; } .p-6 { padding: 1.5rem; } .gap-2 { gap: .5rem; }
  .btn { padding: .25rem .75rem; border: 1px solid #d1d5db; border-radius: .375rem; background: #fff; }
  .btn-primary { background: #2563eb; color: #fff; border-color: #2563eb; }
  .btn-danger { color: #b91c1c; }
  .alink { color: #2563eb; cursor: pointer; text-decoration: underline; }
  .sortable { cursor: pointer; user-select: none; }
  .tooltip { display: none; position: absolute; background: #111; color: #fff; }
  .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0,0,0,0); }
  td, th { padding: .375rem .5rem; border-bottom: 1px solid #e5e7eb; text-align: left; }
  .badge { display: inline-block; padding: 0 .375rem; border-radius: 9999px; font-size: .75rem; }
</style>
<script>
  function sortBy(column) { document.body.dataset.sortedBy = column; }
  function duplicateRow(id) { document.body.dataset.duplicated = id; }
</script>
</head><body class="bg-gray-50 antialiased">"""


def _header() -> str:
    nav = "".join(
        f'<li class="nav-item{" active" if name == "Products" else ""}">'
        f'<a class="px-3 py-2 rounded-md text-sm font-medium hover:bg-gray-100" href="/admin/{name.lower()}"'
        f' data-nav="{name.lower()}">{name}</a></li>'
        for name in NAV
    )
    # A backslash at a line's end continues it: the HTML comes out on the lines it always had.
    return f"""<header class="flex items-center justify-between px-6 py-3 bg-white shadow-sm" \
style="position:sticky;top:0;z-index:10">
  <a class="flex items-center gap-2 font-semibold text-lg" href="/admin" data-testid="logo">Paper &amp; Ink \
<span class="badge" style="background:#e0e7ff">Admin</span></a>
  <nav aria-label="Main"><ul class="flex gap-2" style="list-style:none;margin:0;padding:0">{nav}</ul></nav>
  <form class="flex gap-2" role="search" action="/admin/search"><input class="border rounded-md px-2 py-1" \
type="search" name="q" placeholder="Search products, orders, customers…" aria-label="Search"></form>
  <button class="btn flex items-center gap-2" type="button" aria-haspopup="menu" aria-expanded="false" \
data-testid="user-menu">Ada Lovelace</button>
  <div class="tooltip" role="menu"><a href="/admin/profile" role="menuitem">Profile</a>\
<a href="/logout" role="menuitem">Sign out</a></div>
</header>"""


def _filters() -> str:
    categories = "".join(f'<option value="{c.lower()}">{c}</option>' for c in ["All categories"] + CATEGORIES[:7])
    statuses = "".join(f'<option value="{s.lower()}">{s}</option>' for s in ["Any status"] + STATUSES)
    return f"""<aside class="w-64 p-6 bg-white border-r" style="min-width:16rem" data-testid="filters">
  <h2 class="text-sm font-semibold uppercase tracking-wide text-gray-500">Filters</h2>
  <form class="space-y-3" action="/admin/products" method="get">
    <div class="field"><label for="f-category" class="block text-sm">Category</label>
      <select id="f-category" name="category" class="w-full border rounded-md">{categories}</select></div>
    <div class="field"><label for="f-status" class="block text-sm">Status</label>
      <select id="f-status" name="status" class="w-full border rounded-md">{statuses}</select></div>
    <div class="field flex gap-2">\
<input type="number" name="min" placeholder="Min price" class="w-24 border rounded-md" min="0" step="0.01">
      <input type="number" name="max" placeholder="Max price" class="w-24 border rounded-md" min="0" step="0.01"></div>
    <label class="flex items-center gap-2 text-sm">\
<input type="checkbox" name="in_stock" value="1" checked> In stock only</label>
    <input type="hidden" name="csrf" value="9f8e7d6c5b4a">
    <div class="flex gap-2"><button type="submit" class="btn btn-primary">Apply filters</button>
      <a href="/admin/products" class="text-sm text-gray-500 underline">Reset</a></div>
  </form>
</aside>"""


def _toolbar(rows: int) -> str:
    bulk = "".join(f'<option value="{a.lower()}">{a}</option>' for a in BULK_ACTIONS[:2])
    return f"""<div class="flex items-center justify-between mb-4">
  <h1 class="text-2xl font-bold">Products <span class="text-gray-400 text-base">({rows} shown)</span></h1>
  <div class="flex gap-2"><label class="sr-only" for="bulk">Bulk action</label>
    <select id="bulk" class="border rounded-md" data-testid="bulk-action">\
<option value="">Bulk action…</option>{bulk}</select>
    <button class="btn" type="button" data-action="bulk-apply">Apply</button>
    <a class="btn" href="/admin/products/export.csv" download>Export CSV</a>
    <button class="btn btn-primary" type="button" data-action="new-product">+ New product</button></div>
</div>"""


def _table_head() -> str:
    sortable = {"Name": "name", "Price": "price", "Stock": "stock"}
    select_all = '<input type="checkbox" aria-label="Select all products" data-action="select-all">'
    cells = [f'<th style="width:2rem">{select_all}</th>', "<th></th>"]
    for title in ["Name", "Category", "Price", "Stock", "Status", "Actions"]:
        if title in sortable:
            column = sortable[title]
            sorter = f'<span class="sortable" onclick="sortBy(\'{column}\')" data-sort="{column}">{title} ↕</span>'
            cells.append(f"<th>{sorter}</th>")
        else:
            cells.append(f"<th>{title}</th>")
    return "<tr>" + "".join(cells) + "</tr>"


def _row(i: int, rng: random.Random) -> str:
    product_id = 10_000 + i
    name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice('ABCDEFGH')}{rng.randint(1, 99)}"
    category = rng.choice(CATEGORIES)
    price = rng.randint(150, 9_999) / 100
    stock = rng.choice([0, 0, 3, 12, 25, 40, 120, 250])
    status = rng.choice(STATUSES)
    options = "".join(f'<option value="{s.lower()}"{" selected" if s == status else ""}>{s}</option>' for s in STATUSES)
    stock_style = "color:#b91c1c;font-weight:600" if stock == 0 else "color:#374151"
    shade = "bg-white" if i % 2 else "bg-gray-50"
    # A backslash at a line's end continues it: the HTML comes out on the lines it always had.
    return f"""<tr class="border-b hover:bg-gray-50 {shade}" data-product-id="{product_id}" \
data-sku="SKU-{product_id}" data-status="{status.lower()}">
  <td><input type="checkbox" class="row-select" name="selected" value="{product_id}" \
aria-label="Select {html.escape(name)}"></td>
  <td><img src="/static/thumbs/{product_id}.webp" alt="" width="32" height="32" loading="lazy" \
style="border-radius:4px;background:#e5e7eb"></td>
  <td><a class="font-medium text-blue-600 hover:underline" href="/admin/products/{product_id}/edit" \
data-testid="product-link">{html.escape(name)}</a>
    <div class="text-xs text-gray-500">SKU-{product_id}</div></td>
  <td class="text-gray-600">{category}</td>
  <td><input type="number" class="w-20 border rounded px-1" name="price[{product_id}]" value="{price:.2f}" \
step="0.01" min="0" aria-label="Price"></td>
  <td style="{stock_style}">{stock if stock else "Out of stock"}</td>
  <td><select class="border rounded px-1" name="status[{product_id}]" aria-label="Status" \
data-original="{status.lower()}">{options}</select></td>
  <td class="whitespace-nowrap"><div class="flex gap-2">
    <button class="btn" type="button" data-action="edit" data-id="{product_id}">Edit</button>
    <button class="btn btn-danger" type="button" data-action="delete" data-id="{product_id}" \
data-confirm="Delete {html.escape(name)}?">Delete</button>
    <span class="alink" data-action="duplicate" onclick="duplicateRow({product_id})">Duplicate</span>
    <div class="tooltip" role="tooltip"><button type="button">Undo</button> Last edited by ops@paperink.test</div>
  </div></td>
</tr>"""


def _pagination(extra_links: int) -> str:
    # Two fixed links (previous/next) plus numbered pages, which make the total come out exact.
    pages = "".join(
        f'<li><a class="px-2" href="/admin/products?page={p}">{p}</a></li>' for p in range(1, extra_links + 1)
    )
    return f"""<nav class="flex items-center justify-between mt-4" aria-label="Pagination">
  <a class="btn" href="/admin/products?page=0" rel="prev">Previous</a>
  <ul class="flex gap-2" style="list-style:none">{pages}</ul>
  <a class="btn" href="/admin/products?page=2" rel="next">Next</a>
</nav>"""


_FOOTER = """<footer class="px-6 py-4 text-xs text-gray-500 border-t">
  <p>Prices include VAT. Stock levels refresh every 5 minutes.</p>
  <p>Need help? <a href="/admin/help">Read the admin guide</a>.</p>
  <!-- build 2024.06.1 -->
</footer>
</body></html>"""
