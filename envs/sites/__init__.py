"""Local WebArena-style sites: small server-rendered apps, each on its own seeded SQLite database.

Every site package `envs/sites/<name>/` has `seed.seed(db_path)`, `app.create_app(db_path)` and
`ACCOUNTS`; `envs.sites.server.SiteServer` serves one on 127.0.0.1 and resets it between tasks."""
