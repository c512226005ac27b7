"""The sandbox page in a real browser: Debian's Chromium, headless, driven by Playwright.

Each test starts `pulseops sandbox` as a user would and works the page as a person would:
fire an alert from the page, click buttons as different people, type slash commands, fill a
modal, toggle faults. What happened is checked where it lands: the page, the service's HTTP
API (which only changes when the bot accepted Slack's signed request), and the emulator.

Screenshots go to test-artifacts/browser/. Nothing downloads a browser: the tests skip, with
the reason, when Chromium is not installed (`.ci/run` installs it with apt-get).
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.sandbox_process import ROOT, Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.slow

CHROMIUM = (
    os.environ.get("PULSEOPS_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
TIMEOUT_MS = 20_000
INJECTION = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> <!channel>'

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: apt-get install chromium (.ci/run does)")
    if sync_playwright is None:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path) as running:
        yield running


@pytest.fixture
def page(browser: Browser, sandbox: Sandbox, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.goto(f"{sandbox.emulator_url}/")
    expect(opened.locator("#live")).to_have_text("live")
    yield opened
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    context.close()
    assert errors == [], errors  # no script errors in the page, ever


def act_as(page: Page, user: str) -> None:
    page.select_option("#user-picker", user)


def fire(page: Page, *, sample: str = "alertmanager", summary: str, key: str = "1") -> None:
    page.select_option("#alert-sample", sample)
    page.fill("#alert-summary", summary)
    page.fill("#alert-key", key)
    page.click("#alert-fire")
    expect(page.locator("#alert-result")).to_contain_text("202")


def open_channel(page: Page, prefix: str) -> None:
    link = page.locator(f'a.channel[data-channel-name^="{prefix}"]')
    expect(link).to_have_count(1)
    link.click()


def send(page: Page, text: str) -> None:
    page.fill("#composer", text)
    page.press("#composer", "Enter")


def incident(sandbox: Sandbox, number: int = 1) -> dict[str, Any]:
    return sandbox.api(f"/api/v1/incidents/{number}")  # type: ignore[no-any-return]


def test_fire_acknowledge_and_resolve_from_the_page(page: Page, sandbox: Sandbox) -> None:
    fire(page, summary="Checkout error rate above 5%")
    open_channel(page, "inc-1-checkout-error-rate")
    ack = page.locator('.message button[data-action-id="incident_acknowledge"]')
    expect(ack).to_have_count(1)
    message = page.locator(
        ".message", has=page.locator('button[data-action-id="incident_acknowledge"]')
    )
    ts = message.get_attribute("data-ts")
    expect(page.locator("#channel-topic")).to_contain_text("INC-1")

    act_as(page, "U0ALICE01")
    ack.click()
    same = page.locator(f'.message[data-ts="{ts}"]')
    expect(same).to_contain_text("Acknowledged")
    expect(same.locator(".edited")).to_have_count(1)
    expect(same).to_have_count(1)  # updated in place, not posted again
    assert incident(sandbox)["acknowledged_by"] == "U0ALICE01"

    act_as(page, "U0BOB0001")
    same.locator('button[data-action-id="incident_resolve"]').click()
    expect(same).to_contain_text("Resolved")
    # a resolved incident offers only Reopen
    expect(same.locator("button[data-action-id]")).to_have_count(1)
    expect(same.locator('button[data-action-id="incident_reopen"]')).to_have_count(1)
    assert incident(sandbox)["resolved_by"] == "U0BOB0001"

    send(page, "/incident timeline")
    timeline = page.locator(".ephemeral", has_text="Timeline of INC-1")
    expect(timeline).to_contain_text("Acknowledged")
    expect(timeline).to_contain_text("Resolved")
    expect(timeline.locator(".mention", has_text="@bob")).not_to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "incident-resolved.png"))


def test_declare_an_incident_through_the_modal(page: Page, sandbox: Sandbox) -> None:
    page.locator('a.channel[data-channel-id="C0INCIDENT"]').click()
    act_as(page, "U0CAROL01")
    send(page, "/incident declare")
    modal = page.locator("#modal")
    expect(modal).to_contain_text("Declare incident")
    page.click("#modal-submit")  # the title is required: Slack refuses, nothing is created
    # one error, next to the field, in Slack's words: no toast, no internal block id
    shown = page.locator(".input-error:visible")
    expect(shown).to_have_count(1)
    expect(shown).to_have_text("Please fill out this field.")
    expect(page.locator("#modal-error")).to_be_hidden()
    expect(page.locator("#toast")).to_be_hidden()
    expect(page.locator("body")).not_to_contain_text("declare_title")
    assert sandbox.api("/api/v1/incidents")["incidents"] == []

    modal.locator('[data-action-id="title"]').fill("Search results are stale")
    modal.locator('select[data-action-id="severity"]').select_option("SEV2")
    modal.locator('[data-action-id="description"]').fill("Index lag is 20 minutes")
    page.click("#modal-submit")
    expect(modal).to_have_count(0)
    expect(page.locator("#toast")).to_be_hidden()
    open_channel(page, "inc-1-search-results-are-stale")
    declared = incident(sandbox)
    assert declared["severity"] == "SEV2" and declared["created_by"] == "U0CAROL01"
    assert declared["description"] == "Index lag is 20 minutes"


def test_alert_text_is_shown_as_text_and_runs_nothing(page: Page, sandbox: Sandbox) -> None:
    fire(page, sample="generic", summary=INJECTION)
    wait_for(lambda: incident(sandbox)["slack"]["channel_id"], what="the incident channel")
    page.locator('a.channel[data-channel-id="C0INCIDENT"]').click()
    announcement = page.locator(".message", has_text="window.__pwned=1")
    expect(announcement).to_have_count(1)
    expect(announcement).to_contain_text("<script>")
    expect(announcement).to_contain_text("<!channel>")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#messages script, #messages img[src='x']").count() == 0


def test_faults_show_in_the_api_log_and_the_outbox_catches_up(page: Page, sandbox: Sandbox) -> None:
    page.check("#fault-down")
    wait_for(lambda: sandbox.state()["faults"]["down_for"], what="Slack to be down")
    fire(page, summary="Payments are failing")
    failed = page.locator("#api-log .call.error.fault")
    expect(failed.first).to_be_visible()
    expect(failed.first).to_contain_text("503")
    assert not [c for c in sandbox.state()["channels"] if c["name"].startswith("inc-")]

    page.uncheck("#fault-down")
    open_channel(page, "inc-1-payments-are-failing")  # retried once Slack is back
    created = page.locator('#api-log .call.ok[data-method="conversations.create"]')
    expect(created).to_have_count(1)
    created.click()
    expect(created).to_contain_text('"name": "inc-1-payments-are-failing"')

    # one channel a minute: the second alert's channel is refused with a 429, then waits
    page.fill("#fault-ratelimit-method", "conversations.create")
    page.fill("#fault-ratelimit-rpm", "1")
    page.click("#fault-ratelimit-apply")
    page.fill("#fault-latency", "150")
    page.click("#fault-latency-apply")
    expect(page.locator("#faults-current")).to_contain_text("conversations.create")
    expect(page.locator("#faults-current")).to_contain_text("150")
    fire(page, summary="Refunds are failing", key="2")
    open_channel(page, "inc-2-refunds-are-failing")
    fire(page, summary="Payouts are failing", key="3")
    limited = page.locator('#api-log .call.ratelimited[data-method="conversations.create"]')
    expect(limited.first).to_contain_text("429")
    faults = sandbox.state()["faults"]
    assert faults["latency_ms"] == 150 and faults["rate_limits"] == {"conversations.create": 1}
    page.click("#faults-clear")
    expect(page.locator("#faults-current")).to_contain_text("No faults")


def test_storm_app_home_oncall_and_plain_messages(page: Page, sandbox: Sandbox) -> None:
    page.fill("#storm-count", "40")
    page.click("#storm")
    expect(page.locator("#alert-result")).to_contain_text('"202": 40')
    expect(page.locator("a.channel[data-channel-name^='inc-']")).to_have_count(10)

    act_as(page, "U0ALICE01")
    page.click("#open-home")
    home = page.locator("#home")
    expect(home).to_contain_text("On call")
    expect(home.locator("button[data-action-id]").first).to_be_visible()

    page.locator('a.channel[data-channel-id="C0PAYMENTS"]').click()
    send(page, "/oncall")
    expect(page.locator(".ephemeral")).to_contain_text("Payments")
    send(page, "Looking into the storm now")
    mine = page.locator(".message", has_text="Looking into the storm now")
    expect(mine).to_contain_text("Alice")
    posted = sandbox.emulator("GET", "/_emulator/channels/C0PAYMENTS/messages")[1]["messages"]
    assert [m["user"] for m in posted if m["text"] == "Looking into the storm now"] == ["U0ALICE01"]


def test_run_an_incident_from_the_page(page: Page, sandbox: Sandbox) -> None:
    """Declare, set a lead, post an update, pin a message into the timeline, resolve, and
    find the postmortem draft in the channel."""
    page.locator('a.channel[data-channel-id="C0INCIDENT"]').click()
    act_as(page, "U0CAROL01")
    send(page, "/incident declare")
    modal = page.locator("#modal")
    modal.locator('[data-action-id="title"]').fill("Checkout is slow")
    modal.locator('select[data-action-id="severity"]').select_option("SEV2")
    page.click("#modal-submit")
    expect(modal).to_have_count(0)
    expect(page.locator(".ephemeral", has_text="You declared INC-1")).to_have_count(1)
    open_channel(page, "inc-1-checkout-is-slow")
    expect(page.locator(".message", has_text="Declared by")).not_to_have_count(0)

    page.locator('.message button[data-action-id="incident_roles"]').click()
    modal.locator('select[data-action-id="lead"]').select_option("U0ALICE01")
    page.click("#modal-submit")
    expect(modal).to_have_count(0)
    wait_for(lambda: incident(sandbox)["lead"] == "U0ALICE01", what="the lead")
    expect(page.locator(".message.reply", has_text="Incident lead is now")).to_have_count(1)

    send(page, "/incident update")
    modal.locator('select[data-action-id="status"]').select_option("identified")
    modal.locator('[data-action-id="summary"]').fill("A slow query on the orders table")
    page.click("#modal-submit")
    expect(modal).to_have_count(0)
    expect(page.locator(".message", has_text="INC-1 update — Identified")).to_have_count(1)

    send(page, "The orders index was dropped by migration 42")
    said = page.locator(".message", has_text="The orders index was dropped")
    said.hover()
    said.locator("button.react-pin").click()
    expect(said.locator(".reaction")).to_contain_text(":pushpin: 1")
    expect(page.locator(".ephemeral", has_text="Added to the timeline of INC-1")).to_have_count(1)
    timeline = incident(sandbox)["timeline"]
    assert [e["data"]["author"] for e in timeline if e["kind"] == "message_added"] == ["U0CAROL01"]

    # the message shortcut, from another channel: a form asks which incident
    page.locator('a.channel[data-channel-id="C0PAYMENTS"]').click()
    act_as(page, "U0ALICE01")
    send(page, "Customers report 502s at checkout")
    outside = page.locator(".message", has_text="Customers report 502s")
    outside.hover()
    outside.locator('button.run-shortcut[data-callback-id="add_to_incident_timeline"]').click()
    expect(modal).to_contain_text("Add to timeline")
    modal.locator('select[data-action-id="incident"]').select_option("1")
    page.click("#modal-submit")
    expect(modal).to_have_count(0)
    wait_for(
        lambda: (
            len([e for e in incident(sandbox)["timeline"] if e["kind"] == "message_added"]) == 2
        ),
        what="the shortcut's message on the timeline",
    )

    open_channel(page, "inc-1-checkout-is-slow")
    page.locator('.message button[data-action-id="incident_resolve"]').first.click()
    draft = page.locator("a.file", has_text="INC-1 postmortem draft")
    expect(draft).to_have_count(1)
    href = draft.get_attribute("href")
    assert href is not None
    with urllib.request.urlopen(f"{sandbox.emulator_url}{href}", timeout=10) as response:
        document = response.read().decode()
    assert document.startswith("# INC-1: Checkout is slow")
    assert "The orders index was dropped by migration 42" in document
    assert "A slow query on the orders table" in document
    assert "Customers report 502s at checkout" in document
    page.screenshot(path=str(ARTIFACTS / "incident-postmortem.png"))


def test_phones_and_inboxes_show_the_page_and_its_mail_link_acknowledges(
    page: Page, sandbox: Sandbox
) -> None:
    panel = page.locator("#phones")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Nothing sent yet")
    fire(page, summary="Checkout error rate above 5%")
    mail = panel.locator(".phone-item", has_text="E-mail to u0bob0001@sandbox.example")
    expect(mail).to_contain_text("[PulseOps] Paged: INC-1")
    expect(panel.locator(".phone-item", has_text="Push to U0BOB0001")).to_have_count(1)
    mail.get_by_role("button", name="Open link and acknowledge").click()
    wait_for(lambda: incident(sandbox)["status"] == "acknowledged", what="the acknowledgement")
    assert incident(sandbox)["acknowledged_by"] == "U0BOB0001"


PHONE = {"width": 390, "height": 844}


def overflow(page: Page) -> int:
    """How many pixels the page is wider than the viewport (0: no horizontal scrolling)."""
    return int(
        page.evaluate(
            "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
            " - window.innerWidth"
        )
    )


def inside_viewport(page: Page, selector: str) -> None:
    """`selector` is on screen, within the phone's width (waiting out a re-render: messages
    are redrawn in place when they are edited)."""
    locator = page.locator(f"{selector} >> visible=true")
    box = wait_for(
        lambda: locator.first.bounding_box() if locator.count() else None,
        what=f"{selector} on screen",
    )
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)


def test_the_page_works_on_a_phone(browser: Browser, sandbox: Sandbox) -> None:
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, timezone_id="Asia/Tokyo"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{sandbox.emulator_url}/")
    expect(page.locator("#live")).to_have_text("live")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        # the channel takes the width; sidebar and developer panel are closed toggles
        expect(page.locator("#sidebar")).to_be_hidden()
        expect(page.locator("#devpanel")).to_be_hidden()
        main = page.locator("#main").bounding_box()
        assert main is not None and main["width"] >= PHONE["width"] - 1, main
        for toggle in ("#toggle-sidebar", "#toggle-devpanel", "#user-picker", "#live"):
            inside_viewport(page, toggle)
        assert overflow(page) == 0

        # fire from the developer panel, then pick the channel from the sidebar
        page.click("#toggle-devpanel")
        expect(page.locator("#devpanel")).to_be_visible()
        inside_viewport(page, "#alert-fire")
        fire(page, summary="Checkout error rate above 5%")
        page.click("#toggle-devpanel")
        expect(page.locator("#devpanel")).to_be_hidden()
        page.click("#toggle-sidebar")
        expect(page.locator("#sidebar")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "phone-sidebar.png"))
        open_channel(page, "inc-1-checkout-error-rate")
        expect(page.locator("#sidebar")).to_be_hidden()  # picking a channel closes it

        ack = page.locator('.message button[data-action-id="incident_acknowledge"]')
        expect(ack).to_have_count(1)
        inside_viewport(page, '.message button[data-action-id="incident_acknowledge"]')
        act_as(page, "U0ALICE01")
        ack.click()
        wait_for(lambda: incident(sandbox)["status"] == "acknowledged", what="the ack")
        # dates are shown in the reader's time zone (Tokyo here), not as the UTC fallback
        acked = datetime.fromisoformat(incident(sandbox)["acknowledged_at"].replace("Z", "+00:00"))
        local = acked.astimezone(ZoneInfo("Asia/Tokyo"))
        shown = page.locator(".message time.slack-date").last
        expect(shown).to_contain_text(f"{(local.hour - 1) % 12 + 1}:{local.minute:02d}")
        expect(shown).not_to_contain_text("UTC")
        # words wrap as words: a line of the message is far wider than one letter
        # (the acknowledged message is re-rendered in place: measure one that is on screen)
        titles = page.locator(".message .mrkdwn:visible", has_text="Checkout")

        def title_width() -> float | None:
            box = titles.first.bounding_box() if titles.count() else None
            return box["width"] if box else None

        width = wait_for(title_width, what="the message's title on screen")
        assert width > 200, width
        assert overflow(page) == 0
        page.screenshot(path=str(ARTIFACTS / "phone-channel.png"))
    finally:
        page.screenshot(path=str(ARTIFACTS / "test_the_page_works_on_a_phone.png"))
        context.close()
    assert errors == [], errors


def test_composer_completes_commands_and_mentions(page: Page, sandbox: Sandbox) -> None:
    act_as(page, "U0ALICE01")
    open_channel(page, "payments")
    composer = page.locator("#composer")
    composer.press_sequentially("/onc")
    suggestions = page.locator("#composer-suggest .suggestion")
    expect(suggestions).to_have_count(1)
    expect(suggestions.first).to_have_attribute("data-insert", "/oncall")
    composer.press("Tab")
    expect(composer).to_have_value("/oncall ")
    composer.press_sequentially("override @ca")
    expect(suggestions.first).to_have_attribute("data-insert", "@carol")
    page.screenshot(path=str(ARTIFACTS / "composer-completion.png"))
    composer.press("Enter")  # picks the suggestion; does not send
    expect(composer).to_have_value("/oncall override @carol ")
    composer.press_sequentially("4h payments-primary")
    composer.press("Enter")
    expect(composer).to_have_value("")
    # typed as a person would, the mention reached PulseOps as <@U0CAROL01|carol>
    reply = page.locator(".ephemeral", has_text="is on call for payments-primary")
    expect(reply.locator(".mention", has_text="@carol")).not_to_have_count(0)
    overrides = sandbox.api("/api/v1/overrides?schedule=payments-primary")["overrides"]
    assert [o["user"] for o in overrides] == ["U0CAROL01"]
