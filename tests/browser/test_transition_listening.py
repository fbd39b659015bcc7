"""The transition page in real Chromium, on rendered corpus transitions, against a live server.

Rating unlocks once the seam has played through (from SEAM_BEFORE_S before it to
SEAM_AFTER_S after it, without a jump) and the minimum has been heard. Most tests shrink
both so a journey stays quick, and click the bar just before the seam; one test checks the
default rule itself.
"""

from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from annotation import views
from annotation.models import TransitionAssignment, TransitionRating, TransitionTask

FAST_MIN_S = 0.6  # s of listening in the journey tests
FAST_BEFORE_S = 0.3  # s of the run before the seam
FAST_AFTER_S = 0.5  # s of the run after it
AUDIO = "document.querySelector('#player audio')"


@pytest.fixture
def fast(settings, monkeypatch):
    settings.ODDBALL_MIN_LISTEN_S = FAST_MIN_S
    monkeypatch.setattr(views, "SEAM_BEFORE_S", FAST_BEFORE_S)
    monkeypatch.setattr(views, "SEAM_AFTER_S", FAST_AFTER_S)


def consent(page: Page, site_url: str) -> None:
    """Open the page, be sent to consent, agree, and land back on the page."""
    page.goto(site_url + "/listen/transitions/")
    expect(page).to_have_url(site_url + "/consent/?next=/listen/transitions/")
    page.get_by_label("I agree to take part on these terms.").check()
    page.get_by_role("button", name="Agree and continue").click()
    expect(page).to_have_url(site_url + "/listen/transitions/")


@dataclass(frozen=True)
class Shown:
    """The transition on screen: its assignment and its rendering's timing, s."""

    assignment_id: int
    seam_s: float
    duration_s: float


def wait_for_transition(page: Page, previous: int | None = None) -> Shown:
    """Wait until a transition other than assignment `previous` is on screen."""
    expect(page.locator("#player")).to_be_visible()
    page.wait_for_function(
        "(previous) => { const id = document.getElementById('player').dataset.assignment;"
        " return id && id !== String(previous); }",
        arg=previous,
    )
    assignment_id = int(page.get_attribute("#player", "data-assignment"))
    rendering = TransitionAssignment.objects.get(id=assignment_id).task.rendering
    return Shown(assignment_id, rendering.seam_s, rendering.duration_s)


def audio_time(page: Page) -> float:
    return page.evaluate(f"{AUDIO}.currentTime")


def bar_point(page: Page, shown: Shown, at_s: float) -> tuple[float, float]:
    box = page.locator("#timeline").bounding_box()
    return box["x"] + box["width"] * at_s / shown.duration_s, box["y"] + box["height"] / 2


def seek_on_bar(page: Page, shown: Shown, at_s: float, touch: bool = False) -> None:
    x, y = bar_point(page, shown, at_s)
    if touch:
        page.touchscreen.tap(x, y)
    else:
        page.mouse.click(x, y)
    assert audio_time(page) == pytest.approx(at_s, abs=0.15)


def assert_seam_marked(page: Page, shown: Shown) -> None:
    marker = page.locator("#seam-marker")
    expect(marker).to_be_visible()
    expect(marker).to_contain_text("seam")
    box = marker.bounding_box()
    x, _ = bar_point(page, shown, shown.seam_s)
    assert box["x"] + box["width"] / 2 == pytest.approx(x, abs=1.5)
    expect(page.locator("#seam-text")).to_have_text(
        f"The seam is at {shown.seam_s:.1f} s (the line on the bar)."
    )


def wait_past(page: Page, at_s: float) -> None:
    page.wait_for_function(f"{AUDIO}.currentTime > {at_s}")


def hear_seam(page: Page, shown: Shown, touch: bool = False, key: bool = False) -> None:
    """Jump to just before the seam, play through it until rating unlocks; keep playing."""
    seek_on_bar(page, shown, shown.seam_s - FAST_BEFORE_S - 0.4, touch=touch)
    if key:
        page.keyboard.press("Space")
    elif touch:
        page.locator("#play").tap()
    else:
        page.locator("#play").click()
    wait_past(page, shown.seam_s + FAST_AFTER_S + 0.05)
    expect(page.locator("button.rate").first).to_be_enabled()


def test_a_listener_rates_transitions_by_mouse_and_keyboard(
    transitions_url, new_page, shoot, axe_violations, fast
):
    page = new_page()
    consent(page, transitions_url)
    shown = wait_for_transition(page)
    shoot(page, "20-transition")
    assert not axe_violations(page)
    assert_seam_marked(page, shown)
    rates = page.locator("button.rate")
    expect(rates).to_have_count(5)
    assert all(rates.nth(i).is_disabled() for i in range(5))
    expect(page.locator("#lock-hint")).to_contain_text("Rating unlocks once the seam has played")
    expect(page.get_by_role("button", name="It broke here")).to_be_disabled()  # nothing played

    # By mouse: jump before the seam, play, mark where it broke, rate 4.
    hear_seam(page, shown)
    before = audio_time(page)
    page.get_by_role("button", name="It broke here").click()
    after = audio_time(page)
    expect(page.locator("#broke-marker")).to_be_visible()
    expect(page.locator("#broke-text")).to_contain_text("It broke at")
    shoot(page, "21-transition-broke")
    page.get_by_role("button", name="4").click()
    expect(page.locator("#rated-count")).to_have_text("1")
    first = TransitionRating.objects.get()
    assert first.assignment_id == shown.assignment_id
    assert first.rating == 4
    assert before - 0.05 <= first.broke_at_s <= after + 0.05

    # By keyboard: → jumps 5 s, Space plays, B marks and marks again later, 2 rates.
    shown = wait_for_transition(page, shown.assignment_id)
    assert_seam_marked(page, shown)
    expect(page.locator("#broke-marker")).to_be_hidden()  # a fresh transition, a fresh mark
    page.keyboard.press("b")  # ignored before anything has played
    page.keyboard.press("ArrowRight")
    assert audio_time(page) == pytest.approx(5.0, abs=0.1)
    page.keyboard.press("Space")
    wait_past(page, 5.3)
    page.keyboard.press("b")
    expect(page.locator("#broke-marker")).to_be_visible()
    first_mark = page.locator("#broke-marker").bounding_box()["x"]
    wait_past(page, shown.seam_s + FAST_AFTER_S + 0.05)
    page.keyboard.press("b")
    expect(page.locator("button.rate").first).to_be_enabled()
    moved = page.locator("#broke-marker").bounding_box()["x"]
    assert moved > first_mark + 20
    mark = audio_time(page)
    page.keyboard.press("Digit2")
    expect(page.locator("#rated-count")).to_have_text("2")
    second = TransitionRating.objects.exclude(id=first.id).get()
    assert second.rating == 2
    assert shown.seam_s + FAST_AFTER_S < second.broke_at_s <= mark + 0.05

    for rating in (first, second):
        assert rating.listen_ms >= FAST_MIN_S * 1000
        assert rating.response_ms >= rating.listen_ms - 100
        assert (rating.plays, rating.viewport, rating.language) == (1, "desktop", "en")
    assert (first.seeks, second.seeks) == (1, 1)
    assert not page.errors


def test_rating_stays_locked_until_the_seam_has_played_through(transitions_url, new_page, shoot):
    # The default rule: from 1 s before the seam to 2 s after it, and 4 s heard in all.
    page = new_page()
    consent(page, transitions_url)
    shown = wait_for_transition(page)
    seam = shown.seam_s
    rates = page.locator("button.rate")
    hint = page.locator("#lock-hint")
    expect(hint).to_have_text(
        "Rating unlocks once the seam has played through: from 1 s before the line to 2 s "
        "after it, without jumping."
    )
    # Jumping past the seam does not count, however long it plays there.
    seek_on_bar(page, shown, seam + 2.5)
    page.locator("#play").click()
    wait_past(page, seam + 4.2)
    assert rates.first.is_disabled()
    page.keyboard.press("5")  # ignored while locked
    shoot(page, "22-transition-locked")
    # Back to before the seam: the run through it unlocks rating.
    seek_on_bar(page, shown, seam - 1.4)
    wait_past(page, seam + 1.5)
    assert rates.first.is_disabled()
    wait_past(page, seam + 2.1)
    expect(rates.first).to_be_enabled()
    expect(hint).to_have_text("Heard it: how seamless was it?")
    page.keyboard.press("5")
    expect(page.locator("#rated-count")).to_have_text("1")
    rating = TransitionRating.objects.get()
    assert rating.rating == 5 and rating.broke_at_s is None
    assert rating.listen_ms >= 4000 and rating.seeks == 2
    assert not page.errors


def test_a_double_click_stores_one_rating(transitions_url, new_page, fast):
    page = new_page()
    consent(page, transitions_url)
    shown = wait_for_transition(page)
    hear_seam(page, shown)
    page.get_by_role("button", name="3").dblclick()
    expect(page.locator("#rated-count")).to_have_text("1")
    wait_for_transition(page, shown.assignment_id)
    expect(page.locator("button.rate").first).to_be_disabled()  # the next one is locked
    assert TransitionRating.objects.count() == 1
    assert TransitionRating.objects.get().assignment_id == shown.assignment_id
    assert not page.errors


def test_transitions_are_rated_by_touch_on_a_360_px_phone(
    transitions_url, new_page, shoot, axe_violations, fast, monkeypatch
):
    monkeypatch.setattr(views, "BATCH", 2)  # the thank-you after two ratings, not ten
    page = new_page(viewport=(360, 740))
    consent(page, transitions_url)
    shown = wait_for_transition(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert_seam_marked(page, shown)
    for name in ("1: jarring", "5: seamless, as if one piece", "It broke here"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, name
    assert not axe_violations(page)

    hear_seam(page, shown, touch=True)
    broke = page.get_by_role("button", name="It broke here")
    broke.tap()
    expect(page.get_by_role("button", name="Clear the mark")).to_be_visible()
    page.get_by_role("button", name="Clear the mark").tap()
    expect(page.locator("#broke-marker")).to_be_hidden()
    broke.tap()
    expect(page.locator("#broke-marker")).to_be_visible()
    shoot(page, "23-transition-phone")
    page.get_by_role("button", name="1: jarring").tap()
    expect(page.locator("#rated-count")).to_have_text("1")

    shown = wait_for_transition(page, shown.assignment_id)
    hear_seam(page, shown, touch=True)
    page.locator("#play").tap()  # pause
    assert page.evaluate(f"{AUDIO}.paused")
    page.get_by_role("button", name="5: seamless, as if one piece").tap()
    expect(page.locator("#thanks")).to_be_visible()
    expect(page.locator("#thanks-title")).to_have_text("That makes 2 transitions rated. Thank you!")
    shoot(page, "24-transition-thanks")
    page.get_by_role("button", name="Keep going").tap()
    wait_for_transition(page, shown.assignment_id)

    ratings = list(TransitionRating.objects.order_by("id"))
    assert [r.rating for r in ratings] == [1, 5]
    assert ratings[0].broke_at_s is not None and ratings[1].broke_at_s is None
    assert {r.viewport for r in ratings} == {"phone"}
    assert all(r.seeks == 1 and r.plays == 1 for r in ratings)
    assert not page.errors


def test_a_failed_load_offers_retry_and_skip(transitions_url, new_page, shoot):
    page = new_page()
    page.route("**/media/**", lambda route: route.abort())
    consent(page, transitions_url)
    error = page.locator("#load-error")
    expect(error).to_be_visible()
    expect(page.locator("#load-error-text")).to_have_text(
        "The transition did not load. Try again, or skip this one."
    )
    shoot(page, "25-transition-load-failed")
    failed = TransitionAssignment.objects.get()

    page.get_by_role("button", name="Skip this one").click()
    expect(page.locator("#feedback")).to_have_text("Skipped; here is another one.")
    expect(error).to_be_visible()  # the next one fails too while media are blocked
    failed.refresh_from_db()
    assert failed.skip_reason == "load-failed"
    assert TransitionTask.objects.get(id=failed.task_id).served == 0  # back in the pool

    page.unroute("**/media/**")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#player")).to_be_visible()
    expect(error).to_be_hidden()
    page.keyboard.press("Space")
    wait_past(page, 0.5)
    assert [e for e in page.errors if "ERR_FAILED" not in e] == []


def test_a_rating_given_offline_is_sent_when_the_connection_returns(
    transitions_url, new_page, shoot, fast
):
    page = new_page()
    consent(page, transitions_url)
    shown = wait_for_transition(page)
    page.wait_for_load_state("networkidle")  # the next transition is in memory too
    page.context.set_offline(True)
    hear_seam(page, shown, key=True)
    page.keyboard.press("Digit4")
    expect(page.locator("#outbox-status")).to_have_text("1 rating waiting to be sent.")
    expect(page.locator("#rated-count")).to_have_text("1")
    next_one = wait_for_transition(page, shown.assignment_id)  # fetched ahead, offline
    page.keyboard.press("Space")
    wait_past(page, 0.3)  # and it plays
    page.keyboard.press("Space")
    shoot(page, "26-transition-offline")
    assert TransitionRating.objects.count() == 0

    page.context.set_offline(False)
    expect(page.locator("#outbox-status")).to_be_hidden()
    assert TransitionRating.objects.get().assignment_id == shown.assignment_id
    assert page.evaluate("localStorage.getItem('oddball.transition-outbox')") == "[]"
    hear_seam(page, next_one, key=True)
    page.keyboard.press("Digit3")  # the one after is fetched again, now online
    expect(page.locator("#rated-count")).to_have_text("2")
    wait_for_transition(page, next_one.assignment_id)


def test_an_expired_assignment_is_replaced_and_an_empty_queue_thanks(
    transitions_url, new_page, shoot, fast
):
    page = new_page()
    consent(page, transitions_url)
    shown = wait_for_transition(page)
    hear_seam(page, shown)
    TransitionAssignment.objects.filter(id=shown.assignment_id).update(
        expires_at="2000-01-01T00:00:00Z"
    )
    page.get_by_role("button", name="2").click()
    expect(page.locator("#feedback")).to_have_text("That one had timed out; here is a fresh one.")
    wait_for_transition(page, shown.assignment_id)
    assert TransitionRating.objects.count() == 0

    TransitionTask.objects.update(active=False)
    TransitionAssignment.objects.update(expires_at="2000-01-01T00:00:00Z")
    page.reload()
    expect(page.locator("#done")).to_contain_text("no transitions left for you to rate")
    shoot(page, "27-transition-done")
    assert [e for e in page.errors if "410 (Gone)" not in e] == []
