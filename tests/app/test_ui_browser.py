"""The web UI in a real headless Chromium (Debian's), driven by playwright's driver only.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the `playwright` package;
never `playwright install` (which downloads browsers).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from app_live import LiveServer

from models import read_catalog

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium: "
        "sudo apt-get update && sudo apt-get install -y chromium",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="needs the playwright driver: pip install playwright (no `playwright install`)",
)

ALL_IMAGES_LOADED = """
() => {
  if (document.getElementById('results').getAttribute('aria-busy') !== 'false') return false;
  const images = [...document.querySelectorAll('#results .result img')];
  return images.length > 0 && images.every((img) => img.complete && img.naturalWidth > 0);
}
"""


@pytest.fixture(scope="module")
def browser_context(live_server: LiveServer) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context()
        context.offline_requests = []  # type: ignore[attr-defined]

        def only_local(route) -> None:  # type: ignore[no-untyped-def]
            # The page must work without internet: anything not on our server is refused
            # (and recorded, so that the test fails rather than silently degrading).
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                context.offline_requests.append(route.request.url)  # type: ignore[attr-defined]
                route.abort()

        context.route("**/*", only_local)
        yield context
        assert context.offline_requests == []  # type: ignore[attr-defined]
        browser.close()


@pytest.fixture
def page(browser_context, live_server: LiveServer):  # type: ignore[no-untyped-def]
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + "/")
    # The filters are filled from /v1/facets once the page has loaded.
    page.wait_for_function("document.querySelectorAll('#gender option').length > 1")
    yield page
    page.close()
    assert errors == []


def test_text_query_shows_a_grid_of_photos(page) -> None:  # type: ignore[no-untyped-def]
    assert page.is_checked('input[name="target"][value="product"]')  # text: products first
    page.fill("#query", "black jacket")
    page.click("#search-button")
    page.wait_for_selector(".grid .result img")
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert page.locator(".grid .result").count() == 10
    assert not page.locator("#query-photo").is_visible()
    assert all(t.strip() for t in page.locator(".grid .result .title").all_text_contents())
    assert all(float(s) <= 1.0 for s in page.locator(".grid .result .score").all_text_contents())
    # Changing k or a filter reruns the query.
    page.select_option("#k", "5")
    page.wait_for_function("document.querySelectorAll('#results .result').length === 5")
    page.select_option("#gender", "Women")
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert "5 results" in page.locator("#message").text_content()


def test_photo_upload_shows_ranked_titles(page, sample_catalog: Path) -> None:  # type: ignore[no-untyped-def]
    product = read_catalog(sample_catalog).products[3]
    page.check('input[name="target"][value="text"]')
    page.set_input_files("#file", str(product.image))
    page.wait_for_selector(".list .result .title")
    page.wait_for_function(ALL_IMAGES_LOADED)
    titles = page.locator(".list .result .title").all_text_contents()
    assert len(titles) == 10 and all(t.strip() for t in titles)
    assert page.locator("#query-photo").is_visible()


def test_drag_and_drop_a_photo(page, sample_catalog: Path) -> None:  # type: ignore[no-untyped-def]
    product = read_catalog(sample_catalog).products[4]
    data = base64.b64encode(product.image.read_bytes()).decode()
    page.evaluate(
        """(data) => {
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], 'photo.jpg', {type: 'image/jpeg'}));
          const zone = document.getElementById('drop-zone');
          zone.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));
        }""",
        data,
    )
    page.wait_for_selector(".grid .result img")  # target is still "products": a grid
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert page.locator(".grid .result").count() == 10


def test_errors_are_shown_not_thrown(page) -> None:  # type: ignore[no-untyped-def]
    page.set_input_files(
        "#file", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"}]
    )
    page.wait_for_selector("#message.error")
    assert page.locator("#results .result").count() == 0
    assert "not a readable image" in page.locator("#message").text_content()


RESULT_IDS = "[...document.querySelectorAll('#results .result')].map((r) => r.dataset.id)"
SHOWS_IDS = f"(ids) => JSON.stringify({RESULT_IDS}) === JSON.stringify(ids)"
API_TEXT_SEARCH = """
async (body) => {
  const response = await fetch('/v1/search/text', {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  return (await response.json()).results.map((r) => r.id);
}
"""


def _shown_ids(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.wait_for_function(ALL_IMAGES_LOADED)
    return page.evaluate(RESULT_IDS)


def test_a_link_runs_its_search_and_back_returns_to_it(page, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server.url + "/?q=black+jacket&target=image&k=5&gender=Women")
    shared = _shown_ids(page)
    expected = page.evaluate(
        API_TEXT_SEARCH,
        {"query": "black jacket", "k": 5, "target": "image", "filters": {"gender": "Women"}},
    )
    assert shared == expected and len(shared) == 5  # the link shows the same results
    assert page.input_value("#query") == "black jacket" and page.input_value("#k") == "5"
    assert page.input_value("#gender") == "Women"
    assert page.is_checked('input[name="target"][value="image"]')

    page.fill("#query", "red dress")
    page.click("#search-button")
    page.wait_for_url("**q=red+dress**")
    page.wait_for_function("document.querySelector('#results .result')")
    second = _shown_ids(page)
    page.go_back()
    page.wait_for_url("**q=black+jacket**")
    page.wait_for_function(SHOWS_IDS, arg=shared)
    assert page.input_value("#query") == "black jacket"
    page.go_forward()
    page.wait_for_url("**q=red+dress**")
    page.wait_for_function(SHOWS_IDS, arg=second)


def test_similar_action_and_back(page) -> None:  # type: ignore[no-untyped-def]
    page.fill("#query", "blue shirt")
    page.click("#search-button")
    page.wait_for_selector(".grid .result button.similar")
    first = _shown_ids(page)
    page.click(f'.result[data-id="{first[0]}"] button.similar')
    page.wait_for_url(f"**similar={first[0]}**")
    page.wait_for_function(
        f"(id) => !{RESULT_IDS}.includes(id) && {RESULT_IDS}.length === 10", arg=first[0]
    )
    page.wait_for_selector("#similar-to:not([hidden]) #similar-to-title")
    assert page.text_content("#similar-to-title").strip()
    assert page.input_value("#query") == ""
    page.go_back()
    page.wait_for_url("**q=blue+shirt**")
    page.wait_for_function(SHOWS_IDS, arg=first)
    assert not page.locator("#similar-to").is_visible()


def test_a_photo_is_not_put_in_the_url(page, sample_catalog: Path) -> None:  # type: ignore[no-untyped-def]
    product = read_catalog(sample_catalog).products[5]
    page.set_input_files("#file", str(product.image))
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert "q=" not in page.url and "similar=" not in page.url
    assert page.is_visible("#photo-not-in-link")
    assert "not include it" in page.text_content("#photo-not-in-link")


def test_without_product_vectors_the_page_searches_photos(page, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    def old_index_facets(route) -> None:  # type: ignore[no-untyped-def]
        # As an index built before product vectors answers.
        facets = route.fetch().json()
        route.fulfill(json={**facets, "targets": ["image", "text"]})

    page.route("**/v1/facets", old_index_facets)
    page.goto(live_server.url + "/?q=black+jacket&target=product")
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert page.is_checked('input[name="target"][value="image"]')
    assert not page.is_visible("#target-product")
    assert "target=image" in page.url  # the address says what ran
