"""Deterministic seed data for the forum: 12 subforums, ~300 posts, ~900 comments, votes."""
from __future__ import annotations

import hashlib
import random
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from envs.sites.common import inserted_id
from envs.sites.forum import ACCOUNTS

SEED = 20230301
# All seeded timestamps fall in the four months before this instant, so pages never depend on "now".
EPOCH_END = datetime(2023, 3, 1, 12, 0, 0)
OTHER_USERS_PASSWORD = "forum-pass-2023"

SCHEMA = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user',
    bio TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE forums (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE subscriptions (
    user_id INTEGER NOT NULL REFERENCES users(id),
    forum_id INTEGER NOT NULL REFERENCES forums(id),
    PRIMARY KEY (user_id, forum_id)
);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    forum_id INTEGER NOT NULL REFERENCES forums(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    score INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    edited_at TEXT
);
CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    parent_id INTEGER REFERENCES comments(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    score INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
-- One vote per user per item; posts.score / comments.score already include these votes.
CREATE TABLE votes (
    user_id INTEGER NOT NULL REFERENCES users(id),
    item_type TEXT NOT NULL CHECK (item_type IN ('post', 'comment')),
    item_id INTEGER NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (-1, 1)),
    PRIMARY KEY (user_id, item_type, item_id)
);
CREATE INDEX posts_forum ON posts(forum_id);
CREATE INDEX posts_user ON posts(user_id);
CREATE INDEX comments_post ON comments(post_id);
CREATE INDEX comments_user ON comments(user_id);
"""

FORUMS = [
    ("books", "Books", "Discussion of books, authors and reading habits."),
    ("gadgets", "Gadgets", "Phones, laptops, headphones and every other shiny thing."),
    ("cooking", "Cooking", "Recipes, techniques and kitchen disasters."),
    ("movies", "Movies", "News and discussion about films, old and new."),
    ("personalfinance", "Personal Finance", "Budgeting, saving, investing and getting out of debt."),
    ("running", "Running", "From couch-to-5k to ultramarathons."),
    ("gardening", "Gardening", "Vegetables, flowers, houseplants and soil."),
    ("photography", "Photography", "Cameras, lenses, technique and critique."),
    ("boardgames", "Board Games", "Tabletop games, strategy and game night stories."),
    ("diy", "DIY", "Home improvement, repairs and building things yourself."),
    ("travel", "Travel", "Trip reports, itineraries and travel advice."),
    ("music", "Music", "Albums, concerts, gear and recommendations."),
]

# Per forum: title templates ({x} is filled from the forum's fillers) and body sentences.
TOPICS: dict[str, dict[str, list[str]]] = {
    "books": {
        "titles": [
            "Just finished {x} and I can't stop thinking about it",
            "Is {x} worth reading in 2023?",
            "What should I read after {x}?",
            "Unpopular opinion: {x} is overrated",
            "Book club pick this month: {x}",
            "Re-reading {x} ten years later",
            "Friendly reminder: your local library has {x} as an audiobook",
            "Which translation of {x} do you recommend?",
        ],
        "fillers": ["Dune", "The Left Hand of Darkness", "Middlemarch", "Project Hail Mary", "Beloved",
                    "The Name of the Wind", "Piranesi", "Infinite Jest", "Klara and the Sun",
                    "The Brothers Karamazov", "Circe", "The Remains of the Day", "Station Eleven",
                    "War and Peace", "Educated", "The Overstory"],
        "sentences": [
            "The pacing in the second half surprised me.",
            "I went in with low expectations and came out a fan.",
            "The prose is dense but rewarding if you give it time.",
            "I read it over a long weekend and barely slept.",
            "The ending divided everyone in my book club.",
            "Curious whether the audiobook narration is any good.",
            "I keep recommending it to friends who say they don't read fiction.",
        ],
    },
    "gadgets": {
        "titles": [
            "{x} review after six months of daily use",
            "Is the {x} still worth buying?",
            "{x} battery life is much worse than advertised",
            "PSA: firmware update for the {x} fixes the Bluetooth drops",
            "Upgraded to the {x}, here are my first impressions",
            "Looking for an alternative to the {x}",
            "{x} vs the competition: which one did you pick?",
        ],
        "fillers": ["Pixel 7", "iPhone 14", "Galaxy S23", "Kindle Paperwhite", "Sony WH-1000XM5",
                    "Steam Deck", "MacBook Air M2", "ThinkPad X1 Carbon", "Apple Watch Series 8",
                    "AirPods Pro 2", "Framework Laptop", "iPad Mini", "Garmin Forerunner 255"],
        "sentences": [
            "Build quality feels premium for the price.",
            "The screen is bright enough to use outdoors.",
            "Charging over USB-C finally makes travel easier.",
            "Customer support replaced mine within a week.",
            "The companion app is the weakest part of the experience.",
            "I paid full price, so keep that in mind when reading this.",
            "Would love to hear from anyone who returned theirs.",
        ],
    },
    "cooking": {
        "titles": [
            "My grandmother's {x} recipe",
            "First attempt at {x}, how did I do?",
            "What am I doing wrong with my {x}?",
            "Easy weeknight {x} that even my kids eat",
            "Tips for making {x} ahead of time?",
            "The best {x} I have ever made",
            "Budget friendly {x} for a crowd",
        ],
        "fillers": ["sourdough", "lasagna", "ramen", "pad thai", "chili", "banana bread", "risotto",
                    "pierogi", "shakshuka", "chicken tikka masala", "focaccia", "French onion soup",
                    "carbonara", "dumplings"],
        "sentences": [
            "I doubled the garlic because of course I did.",
            "The trick is letting it rest longer than you think.",
            "Cast iron made a huge difference for the crust.",
            "Everything was prepped the night before.",
            "I used a cheap supermarket brand and it still worked.",
            "Next time I will cut the salt in half.",
            "Happy to share exact measurements if anyone wants them.",
        ],
    },
    "movies": {
        "titles": [
            "Rewatched {x} last night and it holds up",
            "Official discussion: {x}",
            "Why does nobody talk about {x}?",
            "{x} has the best soundtrack of the decade",
            "Saw {x} in IMAX, absolutely worth it",
            "Is {x} a good first watch for my partner?",
            "The practical effects in {x} deserve more credit",
        ],
        "fillers": ["Everything Everywhere All at Once", "The Batman", "Top Gun: Maverick", "Parasite",
                    "Arrival", "Mad Max: Fury Road", "The Banshees of Inisherin", "Spirited Away",
                    "Blade Runner 2049", "Knives Out", "Whiplash", "Past Lives", "Alien"],
        "sentences": [
            "The cinematography alone is worth the ticket.",
            "I caught so many details the second time around.",
            "The third act drags a little but the finale makes up for it.",
            "The lead performance should have won every award.",
            "No spoilers in the title, please keep it that way.",
            "I watched it with subtitles and the dialogue is razor sharp.",
        ],
    },
    "personalfinance": {
        "titles": [
            "Finally paid off my {x}!",
            "How much should I keep in {x}?",
            "Is it smart to use my bonus for {x}?",
            "Confused about {x}, can someone explain?",
            "Mistakes I made with {x} in my twenties",
            "{x}: what I wish I had known earlier",
        ],
        "fillers": ["student loans", "credit card debt", "an emergency fund", "a Roth IRA", "index funds",
                    "a high-yield savings account", "a car loan", "my 401(k)", "a mortgage",
                    "a HSA"],
        "sentences": [
            "I make about average income for my city.",
            "My budget spreadsheet kept me honest every month.",
            "I automated transfers on payday so I never saw the money.",
            "Interest rates changed the math for me this year.",
            "My employer match is 4 percent, for context.",
            "Not looking for stock tips, just general advice.",
        ],
    },
    "running": {
        "titles": [
            "Finished my first {x}!",
            "Training plan advice for a {x}",
            "Knee pain after increasing mileage for my {x}",
            "Race report: {x} in the rain",
            "What do you eat the night before a {x}?",
            "Shoe recommendations for a {x}",
        ],
        "fillers": ["5k", "10k", "half marathon", "marathon", "trail ultra", "parkrun", "relay",
                    "hill race"],
        "sentences": [
            "I went from barely running a mile to this in eight months.",
            "Negative splits felt impossible until they didn't.",
            "My watch said I was way faster than I felt.",
            "Strength training twice a week fixed most of my aches.",
            "The last two kilometres were pure willpower.",
            "I'm 38 and started running during lockdown.",
        ],
    },
    "gardening": {
        "titles": [
            "My {x} finally produced this year",
            "What is wrong with my {x}? Yellow leaves everywhere",
            "Best time to plant {x} in zone 6?",
            "Overwintering {x} indoors",
            "First harvest of {x} from my balcony",
            "Companion plants for {x}?",
        ],
        "fillers": ["tomatoes", "peppers", "fig tree", "monstera", "lavender", "garlic", "blueberries",
                    "roses", "zucchini", "basil", "strawberries"],
        "sentences": [
            "I amended the soil with compost last autumn.",
            "Aphids were a problem until the ladybugs showed up.",
            "Watering deeply twice a week worked better than daily.",
            "It gets about six hours of direct sun.",
            "I grew everything from seed this year.",
            "The squirrels got half of it, sadly.",
        ],
    },
    "photography": {
        "titles": [
            "Shot this with the {x}, critique welcome",
            "Is the {x} a good upgrade from a kit lens?",
            "Sold my {x}, regrets?",
            "Street photography with the {x}",
            "Astrophotography attempt with the {x}",
            "{x} for wildlife on a budget?",
        ],
        "fillers": ["Fujifilm X-T4", "Sony A7 III", "Canon R6", "Nikon Z6", "50mm f/1.8", "Ricoh GR III",
                    "Olympus OM-1", "70-200mm f/2.8", "Pentax K-1", "Canon AE-1"],
        "sentences": [
            "Edited lightly in Lightroom, mostly exposure and crop.",
            "It was shot handheld at dusk.",
            "The autofocus kept hunting in low light.",
            "I'm still learning how to read a histogram.",
            "Film prices are making me reconsider everything.",
            "Golden hour did most of the work here.",
        ],
    },
    "boardgames": {
        "titles": [
            "Played {x} for the first time last night",
            "Is {x} good at two players?",
            "{x} vs Wingspan for a new group?",
            "Our game night tier list, {x} on top",
            "Storage solution for {x}",
            "House rules for {x}?",
        ],
        "fillers": ["Gloomhaven", "Terraforming Mars", "Azul", "Catan", "Spirit Island", "Ticket to Ride",
                    "Codenames", "Brass: Birmingham", "Scythe", "Pandemic", "Root", "Cascadia"],
        "sentences": [
            "The rulebook took us an hour but it clicked quickly.",
            "Our group has wildly different experience levels.",
            "Setup time is the only real downside.",
            "We played four times in one weekend.",
            "The solo mode is surprisingly good.",
            "My partner won every single game, which is a first.",
        ],
    },
    "diy": {
        "titles": [
            "Replaced my {x} myself and saved hundreds",
            "How hard is it to install a {x}?",
            "Before and after: {x} renovation",
            "Help! Water leaking from my {x}",
            "Built a {x} from reclaimed wood",
            "Which tools do I need for a {x}?",
        ],
        "fillers": ["kitchen faucet", "bathroom vanity", "ceiling fan", "garden shed", "deck", "bookshelf",
                    "laminate floor", "toilet fill valve", "water heater", "fence gate", "workbench"],
        "sentences": [
            "Turn off the water main first, learn from my mistake.",
            "YouTube tutorials got me ninety percent of the way.",
            "The whole project took two weekends.",
            "I rented the tile saw instead of buying one.",
            "Measure twice, cut once, then measure again.",
            "Total cost was about a third of the contractor quote.",
        ],
    },
    "travel": {
        "titles": [
            "Two weeks in {x}: my itinerary and costs",
            "First time visiting {x}, what should I not miss?",
            "Is {x} safe for solo travellers?",
            "Trip report: {x} on a budget",
            "Best time of year to visit {x}?",
            "Train or rental car around {x}?",
        ],
        "fillers": ["Japan", "Portugal", "Iceland", "Vietnam", "Peru", "Scotland", "Morocco", "New Zealand",
                    "Greece", "Mexico City", "the Dolomites", "Norway"],
        "sentences": [
            "We booked everything about three months ahead.",
            "Public transport was clean and punctual.",
            "Street food was the highlight of the whole trip.",
            "I packed way too many clothes again.",
            "Locals were incredibly patient with my bad phrasebook attempts.",
            "Travel insurance saved us when our bags went missing.",
        ],
    },
    "music": {
        "titles": [
            "{x} just dropped a new album, thoughts?",
            "Saw {x} live last night, incredible show",
            "Where should a newcomer start with {x}?",
            "Underrated deep cuts from {x}",
            "{x} announced a world tour",
            "Vinyl pressing of {x} worth it?",
        ],
        "fillers": ["Radiohead", "Kendrick Lamar", "Phoebe Bridgers", "Fleetwood Mac", "Daft Punk",
                    "Taylor Swift", "Miles Davis", "Bon Iver", "Arctic Monkeys", "Björk", "The National"],
        "sentences": [
            "The production is lush but never overdone.",
            "It took me three listens before it clicked.",
            "The crowd sang every word of the encore.",
            "The mastering on the streaming version is a bit loud.",
            "Their early records still hit the hardest for me.",
            "Ticket prices were ridiculous, but no regrets.",
        ],
    },
}

COMMENTS = [
    "Great post, thanks for sharing!",
    "I had almost exactly the same experience.",
    "Respectfully disagree, but I see where you're coming from.",
    "Saving this for later.",
    "This is the kind of content I come here for.",
    "Could you share more details?",
    "Same here, it took me a while too.",
    "Honestly this made my day.",
    "Have you tried asking in the weekly thread?",
    "I'd add one thing: patience is everything.",
    "Underrated comment right here.",
    "Came here to say this.",
    "Thanks, this answered my question.",
    "I think you're overthinking it, go for it.",
    "Seconding this recommendation.",
    "That's a really good point I hadn't considered.",
    "Mine turned out completely different, interesting.",
    "Following, I'm curious too.",
    "Not sure I agree, my experience was the opposite.",
    "The sidebar has a good FAQ on this.",
]

FIRST_NAMES = ["alex", "sam", "jordan", "taylor", "casey", "morgan", "riley", "jamie", "quinn", "avery",
               "drew", "parker", "robin", "kai", "sky", "noah", "mia", "leo", "zoe", "eli"]
SUFFIXES = ["_reads", "_runs", "bakes", "_92", "_photo", "_diy", "travels", "_beats", "_grows", "_plays",
            "2000", "_tech", "cooks", "_films"]


def password_hash(password: str) -> str:
    """A salted SHA-256 with a fixed salt: the site is a local test fixture, not a bank."""
    return hashlib.sha256(("forum$" + password).encode()).hexdigest()


def slugify(title: str) -> str:
    chars = [c.lower() if c.isalnum() else "-" for c in title]
    return "-".join(part for part in "".join(chars).split("-") if part)[:80] or "post"


def _time(rng: random.Random, earliest: datetime) -> datetime:
    span = (EPOCH_END - earliest).total_seconds()
    return earliest + timedelta(seconds=rng.randint(0, max(int(span), 1)))


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def seed(db_path: Path) -> None:
    """Create the forum schema in a new SQLite file at db_path and fill it deterministically."""
    db_path = Path(db_path)
    if db_path.exists():
        db_path.unlink()
    rng = random.Random(SEED)
    conn = sqlite3.connect(db_path)
    try:
        conn.executescript(SCHEMA)
        start = EPOCH_END - timedelta(days=120)

        usernames: list[tuple[str, str, str]] = list(ACCOUNTS)
        taken = {name for name, _, _ in usernames}
        while len(usernames) < 45:
            name = rng.choice(FIRST_NAMES) + rng.choice(SUFFIXES)
            if name not in taken:
                taken.add(name)
                usernames.append((name, OTHER_USERS_PASSWORD, "user"))
        for name, password, role in usernames:
            conn.execute(
                "INSERT INTO users (username, password_hash, role, bio, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, password_hash(password), role, f"Hi, I'm {name.split('_')[0]}.",
                 _fmt(start - timedelta(days=rng.randint(30, 900)))),
            )
        user_ids = list(range(1, len(usernames) + 1))

        for name, title, description in FORUMS:
            conn.execute("INSERT INTO forums (name, title, description, created_at) VALUES (?, ?, ?, ?)",
                         (name, title, description, _fmt(start - timedelta(days=400))))
        forum_ids = list(range(1, len(FORUMS) + 1))
        for user_id in user_ids:
            for forum_id in rng.sample(forum_ids, rng.randint(1, 5)):
                conn.execute("INSERT INTO subscriptions VALUES (?, ?)", (user_id, forum_id))

        # Posts: titles are unique so tasks can name a post by its title.
        posts: list[tuple[int, datetime]] = []
        seen_titles: set[str] = set()
        while len(posts) < 300:
            forum_index = rng.randrange(len(FORUMS))
            topic = TOPICS[FORUMS[forum_index][0]]
            title = rng.choice(topic["titles"]).format(x=rng.choice(topic["fillers"]))
            if title in seen_titles:
                continue
            seen_titles.add(title)
            body = " ".join(rng.sample(topic["sentences"], rng.randint(2, 4)))
            created = _time(rng, start)
            score = max(int(rng.paretovariate(1.3) * 4) - rng.randint(0, 6), -5)
            cursor = conn.execute(
                "INSERT INTO posts (forum_id, user_id, title, body, score, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (forum_index + 1, rng.choice(user_ids), title, body, score, _fmt(created)),
            )
            posts.append((inserted_id(cursor), created))

        top_level: list[tuple[int, int, datetime]] = []  # (comment id, post id, created)
        for index in range(900):
            if top_level and index % 3 == 2:
                parent_id, post_id, parent_created = rng.choice(top_level)
                created = _time(rng, parent_created)
            else:
                parent_id = None
                post_id, post_created = rng.choice(posts)
                created = _time(rng, post_created)
            body = rng.choice(COMMENTS)
            if rng.random() < 0.4:
                body += " " + rng.choice(COMMENTS)
            cursor = conn.execute(
                "INSERT INTO comments (post_id, user_id, parent_id, body, score, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (post_id, rng.choice(user_ids), parent_id, body, rng.randint(-2, 25), _fmt(created)),
            )
            if parent_id is None:
                top_level.append((inserted_id(cursor), post_id, created))

        # Votes by the first users (the login accounts among them); scores already count them.
        for user_id in user_ids[:10]:
            for post_id, _ in rng.sample(posts, 15):
                conn.execute("INSERT INTO votes VALUES (?, 'post', ?, ?)",
                             (user_id, post_id, 1 if rng.random() < 0.8 else -1))
        conn.commit()
    finally:
        conn.close()
