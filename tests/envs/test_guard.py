"""The origin guard: a task's browser reaches its own origins and nothing else, and says what it blocked."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from envs.browser import BrowserConfig, BrowserSession
from envs.env import BrowserEnv
from envs.guard import OriginPolicy
from envs.tasks import UrlTask
from tests.pages.page_server import PageServer


@pytest.fixture
def sites() -> Iterator[tuple[PageServer, PageServer]]:
    home, elsewhere = PageServer({}), PageServer({"/": "<title>Elsewhere</title><p>you left</p>"})
    home.pages["/"] = f"""<title>Home</title>
        <a href="{elsewhere.url}/">leave</a>
        <button onclick="fetch('{elsewhere.url}/fetched').then(() => document.title = 'fetched',
                                                            () => document.title = 'fetch failed')">fetch</button>
        <iframe src="{elsewhere.url}/framed"></iframe>
        <a href="{home.url}/second">stay</a>"""
    yield home, elsewhere
    home.close()
    elsewhere.close()


@pytest.fixture(scope="module")
async def session() -> BrowserSession:
    browser = BrowserSession(BrowserConfig(action_timeout_ms=3000, navigation_timeout_ms=5000))
    await browser.start()
    yield browser
    await browser.close()


def _not_framed(blocked_urls: list[str]) -> list[str]:
    # The home page's iframe is blocked each time the page loads (going back reloads it), and a block
    # is reported with the step that sees it land, so it may come with any step.
    return [url for url in blocked_urls if not url.endswith("/framed")]


def _id_of(obs, name: str) -> str:
    return next(e.id for e in obs.elements if e.name == name and e.id)


async def test_other_origins_are_blocked_and_recorded(session, sites):
    home, elsewhere = sites
    env = BrowserEnv(session)
    obs, _ = await env.reset(UrlTask(id="t", start_url=f"{home.url}/", goal="stay"))
    assert elsewhere.hits == []  # the iframe never loaded
    assert [b.url for b in env.guard.blocked] == [f"{elsewhere.url}/framed"]
    assert not env.guard.blocked[0].main_frame

    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'fetch')}')")
    await session.page.wait_for_function("document.title !== 'Home'")
    assert await session.page.title() == "fetch failed"
    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'leave')}')")
    assert elsewhere.hits == []
    assert obs.url == f"{home.url}/" and obs.title == "Home"
    assert _not_framed(info["blocked_urls"]) == [f"{elsewhere.url}/"]
    assert obs.last_action_error and "was blocked" in obs.last_action_error and elsewhere.url in obs.last_action_error
    assert f"{elsewhere.url}/fetched" in [b.url for b in env.guard.blocked]

    obs, _, _, _, info = await env.step(f"goto('{elsewhere.url}/direct')")
    assert obs.url == f"{home.url}/", obs.url
    assert "was blocked" in obs.last_action_error and _not_framed(info["blocked_urls"]) == [f"{elsewhere.url}/direct"]
    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'stay')}')")  # its own origin still works
    assert obs.last_action_error is None and obs.url == f"{home.url}/second" and _not_framed(info["blocked_urls"]) == []
    assert elsewhere.hits == []


@pytest.mark.parametrize("delay_ms", [0, 30, 150, 600])
async def test_a_navigation_blocked_after_its_click_returned_is_still_reported_and_left(session, sites, delay_ms):
    """A page that leaves a moment after the click (a timer): whichever step the block lands in, the
    agent is told, and no observation shows Chromium's error page instead of the site."""
    home, elsewhere = sites
    home.pages["/later"] = (f"<title>Later</title><button onclick=\"setTimeout(() => "
                            f"location.href = '{elsewhere.url}/later', {delay_ms})\">go</button>")
    env = BrowserEnv(session)
    obs, _ = await env.reset(UrlTask(id="t", start_url=f"{home.url}/later", goal="stay"))
    seen = [await env.step(f"click('{_id_of(obs, 'go')}')")]
    await session.page.wait_for_timeout(delay_ms + 300)  # the block has landed by now
    seen.append(await env.step("noop()"))
    assert [o.url for o, *_ in seen] == [f"{home.url}/later"] * 2
    assert sum("was blocked" in (o.last_action_error or "") for o, *_ in seen) == 1
    assert [url for *_, info in seen for url in info["blocked_urls"]] == [f"{elsewhere.url}/later"]
    assert elsewhere.hits == []


async def test_a_popup_to_another_origin_is_blocked(session, sites):
    home, elsewhere = sites
    home.pages["/popup"] = f"""<button onclick="window.open('{elsewhere.url}/popup')">open</button>"""
    env = BrowserEnv(session)
    obs, _ = await env.reset(UrlTask(id="t", start_url=f"{home.url}/popup", goal="stay"))
    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'open')}')")
    assert elsewhere.hits == []
    assert f"{elsewhere.url}/popup" in info["blocked_urls"]


async def test_allow_domain_lets_a_domain_through(session, sites):
    home, elsewhere = sites
    env = BrowserEnv(session, allow_domains=[elsewhere.url])
    obs, _ = await env.reset(UrlTask(id="t", start_url=f"{home.url}/", goal="go"))
    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'leave')}')")
    assert obs.title == "Elsewhere" and obs.last_action_error is None
    assert "/framed" in elsewhere.hits and env.guard.blocked == []


async def test_an_http_task_cannot_open_local_files(session, sites, tmp_path):
    home, _ = sites
    private = tmp_path / "private.html"
    private.write_text("<title>Private</title><p>local file</p>")
    env = BrowserEnv(session)
    await env.reset(UrlTask(id="t", start_url=f"{home.url}/", goal="stay"))
    obs, _, _, _, info = await env.step(f"goto('{private.as_uri()}')")
    assert obs.title == "Home" and "was blocked" in obs.last_action_error
    assert _not_framed(info["blocked_urls"]) == [private.as_uri()]


async def test_a_file_task_may_use_files_but_not_the_network(session, sites, tmp_path):
    _, elsewhere = sites
    second = tmp_path / "second.html"
    second.write_text("<title>Second</title>")
    first = tmp_path / "first.html"
    first.write_text(f'<title>First</title><a href="{second.as_uri()}">next</a><img src="{elsewhere.url}/pixel.png">')
    env = BrowserEnv(session)
    obs, _ = await env.reset(UrlTask(id="t", start_url=str(first), goal="go"))
    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'next')}')")
    assert obs.title == "Second" and obs.last_action_error is None
    assert elsewhere.hits == [] and [b.url for b in env.guard.blocked] == [f"{elsewhere.url}/pixel.png"]


async def test_data_and_blank_pages_are_allowed(session, sites):
    home, _ = sites
    env = BrowserEnv(session)
    await env.reset(UrlTask(id="t", start_url=f"{home.url}/", goal="stay"))
    obs, *_ = await env.step("goto('data:text/html,<title>Data</title>')")
    assert obs.title == "Data" and obs.last_action_error is None
    obs, *_ = await env.step("goto('about:blank')")
    assert obs.url == "about:blank" and obs.last_action_error is None


async def test_downloads_are_off_unless_asked_for(session, sites):
    home, _ = sites
    home.pages["/download"] = """<a href="data:text/plain,hello" download="x.txt">get</a>"""

    async def download_failure() -> str | None:
        env = BrowserEnv(session)
        obs, _ = await env.reset(UrlTask(id="t", start_url=f"{home.url}/download", goal="get"))
        downloads = []
        session.page.on("download", lambda download: downloads.append(download))
        await env.step(f"click('{_id_of(obs, 'get')}')")
        await session.page.wait_for_timeout(300)
        assert downloads, "Playwright reports the download attempt either way"
        return await downloads[0].failure()

    assert "accept_downloads" in (await download_failure() or "")
    session.config.accept_downloads = True  # what --allow-downloads sets
    try:
        assert await download_failure() is None
    finally:
        session.config.accept_downloads = False


def test_policy_decides_from_the_url():
    policy = OriginPolicy.for_task(UrlTask(id="t", start_url="https://shop.example:8443/a |AND| http://forum.test/",
                                           goal=""), allow_domains=["docs.example.org"])
    assert policy.allows("https://shop.example:8443/cart")
    assert not policy.allows("https://shop.example/cart")  # another port is another origin
    assert not policy.allows("http://shop.example:8443/")  # and so is another scheme
    assert policy.allows("http://forum.test:80/x")
    assert policy.allows("https://api.docs.example.org/v1")  # an allowed domain admits its subdomains
    assert not policy.allows("https://evil-docs.example.org/")
    assert not policy.allows("file:///etc/passwd") and not policy.allows("chrome://settings")
    assert policy.allows("data:text/html,x") and policy.allows("about:blank")
    with pytest.raises(ValueError, match="--allow-domain"):
        OriginPolicy().allow_domain("  ")


def test_a_task_can_name_its_own_origins():
    class TwoSites(UrlTask):
        def allowed_origins(self) -> list[str]:
            return ["http://a.test", "http://b.test:8080"]

    policy = OriginPolicy.for_task(TwoSites(id="t", start_url="http://a.test/", goal=""))
    assert policy.allows("http://b.test:8080/x") and not policy.allows("http://c.test/")


def test_the_route_pattern_lets_through_only_what_the_policy_allows() -> None:
    """Requests the pattern does not match skip the guard's check entirely: each must be allowed."""
    policy = OriginPolicy(origins={"http://127.0.0.1:8023", "https://shop.example:443"}, domains={"wiki.org"})
    pattern = policy.unlisted_urls()
    urls = ["http://127.0.0.1:8023/", "http://127.0.0.1:8023?q=1", "http://127.0.0.1:80231/", "http://127.0.0.1:8024/x",
            "https://shop.example/cart", "https://shop.example:443/", "http://shop.example/", "https://SHOP.example/x",
            "https://shop.example.evil.com/", "https://shop.example@evil.com/", "https://en.wiki.org:8443/w",
            "https://wiki.org/", "https://notwiki.org/", "https://wiki.org.evil.com/", "data:text/html,hi", "blob:x",
            "about:blank", "file:///etc/passwd", "ws://127.0.0.1:8023/socket", "javascript:alert(1)"]
    passed = [url for url in urls if not pattern.search(url)]
    assert all(policy.allows(url) for url in passed), [u for u in passed if not policy.allows(u)]
    assert passed == ["http://127.0.0.1:8023/", "http://127.0.0.1:8023?q=1", "https://shop.example/cart",
                      "https://shop.example:443/", "https://SHOP.example/x", "https://en.wiki.org:8443/w",
                      "https://wiki.org/", "data:text/html,hi", "blob:x", "about:blank"]
    files = OriginPolicy(allow_files=True).unlisted_urls()
    assert not files.search("file:///tmp/page.html") and files.search("http://127.0.0.1/")
    assert not OriginPolicy(domains={"*"}).unlisted_urls().search("https://anything.example/")
