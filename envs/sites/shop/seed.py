"""The shop's schema and its deterministic seed data: ~200 products in 10 categories, ~600 reviews,
customer accounts with carts and past orders. Same data on every run (one fixed random seed)."""
from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from envs.sites.common import hash_password, slugify

RANDOM_SEED = 20240615
STORE_TODAY = date(2024, 6, 15)  # the shop's clock: seeded history ends here, new orders get this date
PRODUCTS_PER_CATEGORY = 20
REVIEW_COUNT = 600
FIRST_ORDER_ID = 101

SHIPPING_METHODS = {  # code: (label, price in cents)
    "standard": ("Standard Shipping (5-7 business days)", 599),
    "express": ("Express Shipping (1-2 business days)", 1499),
    "pickup": ("Store Pickup", 0),
}
ORDER_STATUSES = ["Pending", "Processing", "Shipped", "Complete", "Canceled"]

SCHEMA = """
CREATE TABLE categories (
    id INTEGER PRIMARY KEY, slug TEXT UNIQUE NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL);
CREATE TABLE products (
    id INTEGER PRIMARY KEY, category_id INTEGER NOT NULL REFERENCES categories(id),
    sku TEXT UNIQUE NOT NULL, name TEXT NOT NULL, slug TEXT NOT NULL, brand TEXT NOT NULL,
    price_cents INTEGER NOT NULL, stock INTEGER NOT NULL, description TEXT NOT NULL, added_on TEXT NOT NULL);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT UNIQUE NOT NULL,
    password_salt TEXT NOT NULL, password_hash TEXT NOT NULL,
    first_name TEXT NOT NULL, last_name TEXT NOT NULL, phone TEXT NOT NULL,
    street TEXT NOT NULL, city TEXT NOT NULL, state TEXT NOT NULL, zip TEXT NOT NULL, country TEXT NOT NULL);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL REFERENCES products(id),
    customer_id INTEGER REFERENCES customers(id), author TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5), title TEXT NOT NULL, body TEXT NOT NULL,
    created_on TEXT NOT NULL);
CREATE TABLE cart_items (
    customer_id INTEGER NOT NULL REFERENCES customers(id), product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL CHECK (quantity > 0), PRIMARY KEY (customer_id, product_id));
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, number TEXT UNIQUE NOT NULL, customer_id INTEGER NOT NULL REFERENCES customers(id),
    placed_on TEXT NOT NULL, status TEXT NOT NULL,
    ship_name TEXT NOT NULL, ship_street TEXT NOT NULL, ship_city TEXT NOT NULL, ship_state TEXT NOT NULL,
    ship_zip TEXT NOT NULL, ship_country TEXT NOT NULL, ship_phone TEXT NOT NULL,
    shipping_method TEXT NOT NULL, shipping_cents INTEGER NOT NULL,
    subtotal_cents INTEGER NOT NULL, total_cents INTEGER NOT NULL);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id), name TEXT NOT NULL, sku TEXT NOT NULL,
    price_cents INTEGER NOT NULL, quantity INTEGER NOT NULL);
CREATE INDEX reviews_by_product ON reviews(product_id);
CREATE INDEX products_by_category ON products(category_id);
CREATE INDEX orders_by_customer ON orders(customer_id);
"""


@dataclass(frozen=True)
class Customer:
    username: str
    password: str
    first_name: str
    last_name: str
    phone: str
    street: str
    city: str
    state: str
    zip: str
    orders: tuple[tuple[str, str], ...]  # (placed_on ISO date, status) of past orders
    cart: int = 0  # how many products wait in the cart

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


CUSTOMERS = [
    Customer("emma.lopez", "Maple-412", "Emma", "Lopez", "(503) 555-0142", "412 Maple Street", "Portland", "OR",
             "97205", (("2023-11-03", "Complete"), ("2024-02-17", "Complete"), ("2024-05-28", "Shipped"),
                       ("2024-06-10", "Pending")), cart=2),
    Customer("liam.chen", "Harbor-88", "Liam", "Chen", "(206) 555-0178", "88 Harbor Way, Apt 5B", "Seattle", "WA",
             "98101", (("2023-12-12", "Complete"), ("2024-04-02", "Canceled"))),
    Customer("olivia.patel", "Elm-1507", "Olivia", "Patel", "(512) 555-0119", "1507 Elm Avenue", "Austin", "TX",
             "78701", (("2024-01-22", "Complete"), ("2024-06-01", "Shipped"), ("2024-06-12", "Processing"))),
    Customer("ava.johnson", "Cedar-9", "Ava", "Johnson", "(303) 555-0163", "9 Cedar Court", "Denver", "CO",
             "80202", (("2024-03-08", "Complete"),), cart=1),
    Customer("noah.kim", "Birch-23", "Noah", "Kim", "(617) 555-0131", "23 Birch Lane", "Boston", "MA", "02108", ()),
]

# category name: (description, brands, [(product type, (min, max price in dollars), features, variants)])
ProductType = tuple[str, tuple[int, int], list[str], list[str]]
CATALOG: dict[str, tuple[str, list[str], list[ProductType]]] = {
    "Electronics": (
        "Headphones, speakers, chargers and the gadgets that keep you connected.",
        ["Sonora", "Voltix", "Auralis", "Kestrel"],
        [("Wireless Headphones", (39, 249), ["Bluetooth 5.3 with multipoint pairing", "up to 40 hours of battery life",
                                            "active noise cancellation", "a foldable design with a travel case"],
          ["Black", "White", "Midnight Blue", "Silver"]),
         ("Portable Bluetooth Speaker", (25, 179), ["IP67 water and dust resistance", "360-degree sound",
                                                   "12 hours of playtime", "a built-in speakerphone"],
          ["Black", "Forest Green", "Coral Red", "Slate Gray"]),
         ("USB-C Fast Charger", (15, 59), ["65W power delivery", "two USB-C and one USB-A port",
                                          "foldable prongs", "protection against overheating"],
          ["65W", "100W", "White", "Black"]),
         ("Smart Fitness Watch", (49, 299), ["heart-rate and sleep tracking", "built-in GPS",
                                            "a 7-day battery", "water resistance to 50 meters"],
          ["Black", "Rose Gold", "Silver", "Olive"]),
         ("Wireless Earbuds", (29, 199), ["a compact charging case", "touch controls",
                                         "sweat resistance", "low-latency gaming mode"],
          ["Black", "White", "Navy", "Sand"])],
    ),
    "Computers & Accessories": (
        "Keyboards, mice, monitors, storage and everything for your desk setup.",
        ["Keystone", "Nimbus", "Praxis", "Lumetra"],
        [("Mechanical Keyboard", (49, 169), ["hot-swappable switches", "per-key RGB backlight",
                                            "a detachable USB-C cable", "PBT keycaps"],
          ["Brown Switches", "Red Switches", "Blue Switches", "Compact 75%"]),
         ("Wireless Mouse", (15, 89), ["a 4000 DPI optical sensor", "silent clicks",
                                      "a 70-day battery", "an ergonomic right-handed shape"],
          ["Black", "Graphite", "White", "Left-Handed"]),
         ("27-inch Monitor", (149, 449), ["a 1440p IPS panel", "a 144 Hz refresh rate",
                                         "a height-adjustable stand", "HDMI and DisplayPort inputs"],
          ["Black", "White", "with Speakers", "USB-C Edition"]),
         ("Portable SSD", (59, 229), ["read speeds up to 1050 MB/s", "a shock-resistant shell",
                                     "USB-C and USB-A cables included", "hardware encryption"],
          ["500GB", "1TB", "2TB", "4TB"]),
         ("Laptop Stand", (19, 79), ["aluminum construction", "six height settings",
                                    "ventilation for cooler running", "a foldable, portable frame"],
          ["Silver", "Space Gray", "Black", "Rose Gold"])],
    ),
    "Home & Kitchen": (
        "Cookware, small appliances and storage for a kitchen that works.",
        ["Hearthstone", "Copperline", "Casa Verde", "Brightmill"],
        [("Nonstick Frying Pan", (19, 89), ["a PFOA-free ceramic coating", "an oven-safe handle to 450F",
                                           "induction-ready base", "dishwasher-safe construction"],
          ["8-inch", "10-inch", "12-inch", "Set of 2"]),
         ("Electric Kettle", (24, 99), ["a 1.7 liter capacity", "five temperature presets",
                                       "a keep-warm function", "automatic shut-off"],
          ["Stainless Steel", "Matte Black", "Glass", "Cream"]),
         ("Chef's Knife", (29, 149), ["high-carbon stainless steel", "a full-tang handle",
                                     "a hand-sharpened 15-degree edge", "a protective sheath"],
          ["6-inch", "8-inch", "10-inch", "Damascus Steel"]),
         ("Glass Food Storage Set", (22, 64), ["leak-proof locking lids", "oven and microwave-safe glass",
                                              "stackable containers", "BPA-free lids"],
          ["10-Piece", "18-Piece", "24-Piece", "Round"]),
         ("Drip Coffee Maker", (39, 189), ["a 12-cup thermal carafe", "a programmable timer",
                                          "a reusable gold-tone filter", "a brew-strength selector"],
          ["Stainless Steel", "Matte Black", "White", "5-Cup"])],
    ),
    "Sports & Outdoors": (
        "Gear for hiking, camping, training and getting outside.",
        ["Trailhead", "Summit Co.", "Riverbend", "Northpeak"],
        [("Hiking Backpack", (45, 189), ["a 40 liter main compartment", "a ventilated back panel",
                                        "a built-in rain cover", "hydration-bladder compatibility"],
          ["Slate Gray", "Ocean Blue", "Olive", "Women's Fit"]),
         ("Insulated Water Bottle", (14, 44), ["double-wall vacuum insulation", "24 hours cold, 12 hours hot",
                                              "a leak-proof lid", "powder-coated grip"],
          ["24 oz", "32 oz", "40 oz", "Kids 12 oz"]),
         ("Yoga Mat", (19, 89), ["6 mm of cushioning", "a non-slip textured surface",
                                "an included carrying strap", "latex-free material"],
          ["Purple", "Ocean Blue", "Charcoal", "Extra Long"]),
         ("Camping Tent", (79, 399), ["a two-person capacity", "a three-season rainfly",
                                     "color-coded poles for fast setup", "two doors and two vestibules"],
          ["Two-Person", "Four-Person", "Six-Person", "Ultralight"]),
         ("Adjustable Dumbbell", (59, 299), ["weights from 5 to 52.5 pounds", "a quick-select dial",
                                            "a compact storage tray", "a durable molded handle"],
          ["Single", "Pair", "with Stand", "Compact"])],
    ),
    "Beauty & Personal Care": (
        "Skincare, hair care and grooming essentials.",
        ["Lumiere", "Verdant", "Pure Petal", "Alder & Ash"],
        [("Hydrating Face Serum", (14, 68), ["hyaluronic acid", "vitamin C for brightness",
                                            "a fragrance-free formula", "suitability for sensitive skin"],
          ["1 fl oz", "2 fl oz", "Travel Size", "Unscented"]),
         ("Ionic Hair Dryer", (29, 149), ["1875 watts of drying power", "three heat settings",
                                         "a cool-shot button", "a concentrator and diffuser"],
          ["Rose Gold", "Black", "White", "Travel Size"]),
         ("Electric Toothbrush", (24, 129), ["a two-minute smart timer", "three cleaning modes",
                                            "a 30-day battery", "two replacement heads"],
          ["White", "Black", "Pink", "Twin Pack"]),
         ("Mineral Sunscreen SPF 50", (9, 32), ["broad-spectrum protection", "zinc oxide",
                                               "80 minutes of water resistance", "a non-greasy finish"],
          ["3 fl oz", "6 fl oz", "Tinted", "Kids"]),
         ("Beard Trimmer", (19, 89), ["20 length settings", "self-sharpening steel blades",
                                     "a 90-minute runtime", "a washable head"],
          ["Black", "Silver", "with Travel Case", "Waterproof"])],
    ),
    "Toys & Games": (
        "Board games, puzzles, building sets and gifts for every age.",
        ["Playwise", "Tinker Town", "Brightside Games", "Oakleaf Toys"],
        [("Strategy Board Game", (19, 69), ["2 to 5 players", "games that last 45 to 90 minutes",
                                           "richly illustrated cards", "easy-to-learn rules"],
          ["Family Edition", "Deluxe Edition", "Classic Edition", "Expansion Pack"]),
         ("1000-Piece Jigsaw Puzzle", (12, 29), ["thick, precision-cut pieces", "a glare-free finish",
                                                "a poster for reference", "a sturdy storage box"],
          ["Mountain Lake", "City at Night", "Wildflowers", "World Map"]),
         ("Building Block Set", (24, 129), ["over 500 pieces", "compatibility with major brands",
                                           "step-by-step instructions", "a reusable storage bin"],
          ["Castle", "Space Station", "City Fire Truck", "Pirate Ship"]),
         ("Remote Control Car", (29, 119), ["a top speed of 20 mph", "a rechargeable battery",
                                           "all-terrain tires", "a 2.4 GHz controller"],
          ["Red", "Blue", "Monster Truck", "Off-Road Buggy"]),
         ("Plush Teddy Bear", (12, 39), ["super-soft fabric", "embroidered eyes safe for toddlers",
                                        "a machine-washable body", "a gift-ready ribbon"],
          ["Small", "Large", "Honey Brown", "White"])],
    ),
    "Books": (
        "Fiction, cookbooks, guides and reference for curious readers.",
        ["Lantern Press", "Northwind Books", "Paper Crane", "Meridian House"],
        [("Mystery Novel", (9, 28), ["a twisting plot", "an unforgettable detective",
                                    "short, gripping chapters", "a surprise ending"],
          ["Paperback", "Hardcover", "Large Print", "Box Set"]),
         ("Vegetarian Cookbook", (15, 39), ["over 120 recipes", "full-color photography",
                                           "weeknight meals in 30 minutes", "seasonal menus"],
          ["Paperback", "Hardcover", "Spiral-Bound", "Second Edition"]),
         ("National Parks Travel Guide", (14, 32), ["detailed trail maps", "lodging and camping tips",
                                                   "itineraries from 1 to 7 days", "wildlife-spotting advice"],
          ["Paperback", "Second Edition", "Pocket Edition", "Western Parks"]),
         ("Beginner's Python Programming Guide", (19, 49), ["hands-on exercises", "clear explanations",
                                                           "projects you can build", "online code samples"],
          ["Paperback", "Third Edition", "Hardcover", "Workbook"]),
         ("Illustrated Field Guide to Birds", (16, 36), ["over 600 species", "range maps",
                                                        "song descriptions", "a durable flexible cover"],
          ["Eastern Edition", "Western Edition", "Paperback", "Pocket Edition"])],
    ),
    "Grocery & Gourmet Food": (
        "Coffee, tea, snacks and pantry staples.",
        ["Golden Grove", "Highland Roasters", "Harvest Table", "Blue Ridge Pantry"],
        [("Whole Bean Coffee", (9, 24), ["single-origin beans", "a medium roast",
                                        "notes of chocolate and cherry", "a resealable valve bag"],
          ["12 oz", "2 lb", "Decaf 12 oz", "Espresso Roast 2 lb"]),
         ("Organic Green Tea", (5, 18), ["40 biodegradable tea bags", "a smooth, grassy flavor",
                                        "USDA organic certification", "natural antioxidants"],
          ["40 Bags", "100 Bags", "Jasmine", "Loose Leaf 8 oz"]),
         ("Extra Virgin Olive Oil", (11, 34), ["cold-pressed olives", "a peppery finish",
                                              "a dark glass bottle", "a harvest date on every label"],
          ["500 ml", "1 Liter", "3 Liter Tin", "Pack of 2"]),
         ("Trail Mix Snack Pack", (7, 22), ["roasted almonds and cashews", "dark chocolate pieces",
                                           "no artificial flavors", "individually sealed packs"],
          ["Pack of 12", "Pack of 24", "Sweet & Salty", "Nut-Free"]),
         ("Raw Wildflower Honey", (8, 26), ["unfiltered, raw honey", "local beekeepers",
                                           "a squeeze-bottle top", "a rich floral taste"],
          ["12 oz", "16 oz", "32 oz", "Pack of 3"])],
    ),
    "Office Products": (
        "Notebooks, pens, organizers and supplies for home and office.",
        ["Inkwell", "Clearpoint", "Folio & Co.", "Deskmate"],
        [("Gel Pen Set", (6, 24), ["quick-drying ink", "a comfortable rubber grip",
                                  "0.7 mm fine points", "assorted colors"],
          ["Pack of 12", "Pack of 24", "Black Ink", "Pastel Colors"]),
         ("Hardcover Notebook", (8, 29), ["192 pages of thick paper", "a lay-flat binding",
                                         "an elastic closure", "an inner storage pocket"],
          ["Dotted", "Lined", "Blank", "Pack of 3"]),
         ("Desk Organizer", (14, 49), ["five compartments", "a bamboo finish",
                                      "a slot for your phone", "non-slip feet"],
          ["Bamboo", "Black Mesh", "White", "with Drawer"]),
         ("Label Maker", (24, 79), ["a QWERTY keyboard", "one-touch fonts",
                                   "rechargeable battery", "tape widths up to 12 mm"],
          ["Blue", "Gray", "with 3 Tapes", "Bluetooth"]),
         ("Ergonomic Office Chair", (119, 399), ["adjustable lumbar support", "breathable mesh back",
                                                "4D armrests", "a 300-pound weight capacity"],
          ["Black", "Gray", "with Headrest", "Executive"])],
    ),
    "Pet Supplies": (
        "Food, toys, beds and care for dogs and cats.",
        ["Happy Tails", "Whisker & Paw", "Barkley", "Furever"],
        [("Orthopedic Dog Bed", (39, 149), ["memory foam support", "a removable washable cover",
                                           "a non-skid bottom", "raised bolster edges"],
          ["Medium", "Large", "Extra Large", "Gray"]),
         ("Interactive Cat Toy", (9, 34), ["an unpredictable motion pattern", "feather attachments",
                                          "an automatic shut-off timer", "USB charging"],
          ["Feather Wand", "Laser Tower", "Butterfly", "Mouse"]),
         ("Grain-Free Dog Food", (24, 79), ["real chicken as the first ingredient", "no corn, wheat or soy",
                                           "added omega fatty acids", "a formula for all life stages"],
          ["Chicken 12 lb", "Salmon 12 lb", "Chicken 24 lb", "Puppy 12 lb"]),
         ("Retractable Dog Leash", (14, 44), ["a 16-foot tape", "a one-button brake and lock",
                                             "an anti-slip handle", "a reflective strip"],
          ["Small", "Medium", "Large", "Red"]),
         ("Clumping Cat Litter", (12, 36), ["99% dust-free granules", "odor control with activated carbon",
                                           "tight, easy-scoop clumps", "an unscented formula"],
          ["20 lb Bag", "40 lb Bag", "Unscented 25 lb", "Lavender 25 lb"])],
    ),
}

REVIEW_FIRST_NAMES = ["Maria", "James", "Aisha", "Daniel", "Sofia", "Michael", "Priya", "David", "Grace",
                      "Carlos", "Hannah", "Ethan", "Yuki", "Omar", "Chloe", "Lucas", "Fatima", "Ben",
                      "Isabella", "Jonah", "Mei", "Samuel", "Nora", "Tomas", "Leah", "Victor", "Zoe", "Amir"]
REVIEW_LAST_INITIALS = "ABCDEFGHJKLMNPRSTVW"

REVIEW_TITLES = {
    5: ["Absolutely love it", "Exceeded my expectations", "Best purchase this year", "Five stars, no question",
        "Worth every penny"],
    4: ["Very good overall", "Solid choice", "Happy with this", "Great value", "Does the job well"],
    3: ["It's okay", "Decent but not great", "Mixed feelings", "Average", "Fine for the price"],
    2: ["Disappointing", "Not what I hoped", "Had some problems", "Would not buy again", "Below average"],
    1: ["Broke quickly", "Waste of money", "Very poor quality", "Returned it", "Do not recommend"],
}
REVIEW_SENTENCES = {
    "good": ["The {thing} arrived quickly and was well packaged.", "Quality feels much better than I expected.",
             "I use it every day and it has held up perfectly.", "Setup took less than five minutes.",
             "My whole family loves it.", "It looks even nicer in person than in the photos.",
             "Great value compared to the big-name brands.", "I already ordered a second one as a gift."],
    "mixed": ["It works, but the {thing} feels a bit cheap.", "Shipping took longer than promised.",
              "Good for the price, though the instructions were confusing.",
              "It does what it says, nothing more.", "The color was slightly different from the picture."],
    "bad": ["The {thing} stopped working after two weeks.", "Customer service never answered my emails.",
            "It arrived damaged and the replacement had the same problem.",
            "Much smaller than the description suggested.", "I returned it for a refund."],
}


def seed(db_path: Path) -> None:
    """Create the shop's schema in a new SQLite file at db_path and fill it with the seed data."""
    db_path = Path(db_path)
    if db_path.exists():
        raise FileExistsError(f"{db_path} already exists; seed() writes a new database, remove the file first")
    rng = random.Random(RANDOM_SEED)
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a fresh file: nothing to protect until it is complete
        conn.executescript(SCHEMA)
        products = _insert_catalog(conn, rng)
        customer_ids = _insert_customers(conn)
        _insert_reviews(conn, rng, products, customer_ids)
        _insert_orders_and_carts(conn, rng, products, customer_ids)
        conn.commit()
    finally:
        conn.close()


def _price_cents(rng: random.Random, low: int, high: int) -> int:
    dollars = rng.randint(low, high)
    return dollars * 100 + rng.choice([99, 99, 99, 49, 95, 0])


def _insert_catalog(conn: sqlite3.Connection, rng: random.Random) -> list[tuple[int, str, int, str]]:
    """Returns (product id, name, price in cents, product type) for every product."""
    products: list[tuple[int, str, int, str]] = []
    lines = ["", "", "Pro", "Lite", "Plus", "Max", "Essential", "Signature"]
    first_day = date(2022, 1, 1)
    for category_id, (category, (description, brands, types)) in enumerate(CATALOG.items(), start=1):
        conn.execute("INSERT INTO categories VALUES (?, ?, ?, ?)",
                     (category_id, slugify(category), category, description))
        names: set[str] = set()
        while len(names) < PRODUCTS_PER_CATEGORY:
            brand, line = rng.choice(brands), rng.choice(lines)
            kind, (low, high), features, variants = rng.choice(types)
            name = " ".join(part for part in (brand, line, kind) if part) + f", {rng.choice(variants)}"
            if name in names:
                continue
            names.add(name)
            product_id = len(products) + 1
            price = _price_cents(rng, low, high)
            stock = 0 if rng.random() < 0.08 else rng.randint(1, 150)
            chosen = rng.sample(features, 3)
            text = (f"The {name} from {brand} brings together {chosen[0]}, {chosen[1]} and {chosen[2]}. "
                    f"{rng.choice(_BLURBS).format(kind=kind.lower())} "
                    f"Backed by {brand}'s {rng.choice(['one-year', 'two-year', '90-day'])} warranty.")
            sku = f"{slugify(category)[:3].upper()}-{product_id:04d}"
            added_on = first_day + timedelta(days=rng.randint(0, 800))
            conn.execute(
                "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (product_id, category_id, sku, name, slugify(name), brand, price, stock, text, added_on.isoformat()),
            )
            products.append((product_id, name, price, kind))
    return products


_BLURBS = [
    "Whether it's for everyday use or a special occasion, this {kind} is built to last.",
    "Customers choose this {kind} for its reliability and thoughtful design.",
    "A dependable {kind} that fits right into your routine.",
    "Designed and tested to make this {kind} a pleasure to use.",
    "An easy pick if you need a {kind} that simply works.",
]


def _insert_customers(conn: sqlite3.Connection) -> dict[str, int]:
    ids = {}
    for customer_id, c in enumerate(CUSTOMERS, start=1):
        salt = f"salt-{c.username}"
        conn.execute(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (customer_id, c.username, c.email, salt, hash_password(c.password, salt), c.first_name, c.last_name,
             c.phone, c.street, c.city, c.state, c.zip, "United States"),
        )
        ids[c.username] = customer_id
    return ids


def _insert_reviews(conn: sqlite3.Connection, rng: random.Random, products: list[tuple[int, str, int, str]],
                    customer_ids: dict[str, int]) -> None:
    # Some products are far more reviewed than others, and a few have no reviews at all.
    weights = [rng.choice([0, 1, 2, 3, 5, 8]) for _ in products]
    first_day, span = date(2022, 3, 1), (STORE_TODAY - date(2022, 3, 1)).days
    customers = list(CUSTOMERS)
    for review_id in range(1, REVIEW_COUNT + 1):
        product_id, _name, _price, kind = rng.choices(products, weights=weights)[0]
        rating = rng.choices([5, 4, 3, 2, 1], weights=[40, 30, 14, 8, 8])[0]
        tone = "good" if rating >= 4 else "mixed" if rating == 3 else "bad"
        sentences = rng.sample(REVIEW_SENTENCES[tone], 2)
        if rating >= 4 and rng.random() < 0.3:
            sentences.append(rng.choice(REVIEW_SENTENCES["mixed"]))
        body = " ".join(s.format(thing=kind.lower()) for s in sentences)
        customer_id = None
        if rng.random() < 0.04:  # a few reviews were written by the seeded accounts
            customer = rng.choice(customers)
            customer_id, author = customer_ids[customer.username], f"{customer.first_name} {customer.last_name[0]}."
        else:
            author = f"{rng.choice(REVIEW_FIRST_NAMES)} {rng.choice(REVIEW_LAST_INITIALS)}."
        created_on = first_day + timedelta(days=rng.randint(0, span - 1))
        conn.execute(
            "INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (review_id, product_id, customer_id, author, rating, rng.choice(REVIEW_TITLES[rating]), body,
             created_on.isoformat()),
        )


def _insert_orders_and_carts(conn: sqlite3.Connection, rng: random.Random,
                             products: list[tuple[int, str, int, str]], customer_ids: dict[str, int]) -> None:
    planned = sorted((placed_on, status, c) for c in CUSTOMERS for placed_on, status in c.orders)
    for order_id, (placed_on, status, c) in enumerate(planned, start=FIRST_ORDER_ID):
        items = [(p, rng.choice([1, 1, 1, 2, 3])) for p in rng.sample(products, rng.randint(1, 4))]
        subtotal = sum(price * quantity for (_id, _name, price, _kind), quantity in items)
        method = rng.choice(["standard", "standard", "express", "pickup"])
        shipping_label, shipping = SHIPPING_METHODS[method]
        placed_at = datetime.fromisoformat(placed_on).replace(hour=rng.randint(8, 21), minute=rng.randint(0, 59))
        conn.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (order_id, order_number(order_id), customer_ids[c.username], placed_at.isoformat(sep=" "), status,
             f"{c.first_name} {c.last_name}", c.street, c.city, c.state, c.zip, "United States", c.phone,
             shipping_label, shipping, subtotal, subtotal + shipping),
        )
        for (product_id, name, price, _kind), quantity in items:
            sku = conn.execute("SELECT sku FROM products WHERE id = ?", (product_id,)).fetchone()[0]
            conn.execute(
                "INSERT INTO order_items (order_id, product_id, name, sku, price_cents, quantity)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (order_id, product_id, name, sku, price, quantity),
            )
    in_stock = [row[0] for row in conn.execute("SELECT id FROM products WHERE stock > 0 ORDER BY id")]
    for c in CUSTOMERS:
        for product_id in rng.sample(in_stock, c.cart):
            conn.execute("INSERT INTO cart_items VALUES (?, ?, ?)", (customer_ids[c.username], product_id, 1))


def order_number(order_id: int) -> str:
    """The number customers see, Magento-style: the order id zero-padded to nine digits."""
    return f"{order_id:09d}"
