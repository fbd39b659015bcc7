"""The listening experience in real Chromium, on real snippets, against a live server.

Snippets must play for the minimum before answers unlock; most tests lower the minimum so
a journey of sixteen triplets stays quick, and one test checks the default of 4 s itself.
"""

import pytest
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import Page, expect

from annotation.models import Assignment, Judgment, Listener, SnippetReport, Triplet

FAST_MIN_S = 0.6  # s of listening per snippet in the journey tests


@pytest.fixture
def fast(settings):
    settings.ODDBALL_MIN_LISTEN_S = FAST_MIN_S


def consent(page: Page, site_url: str) -> None:
    page.goto(site_url + "/consent/")
    page.get_by_label("I agree to take part on these terms.").check()
    page.get_by_role("button", name="Agree and continue").click()
    expect(page).to_have_url(site_url + "/listen/instructions/")


def no_practice() -> None:
    Triplet.objects.filter(kind=Triplet.Kind.GOLD).update(active=False)


def audio_time(page: Page, index: int) -> float:
    return page.evaluate(f"document.querySelectorAll('#players audio')[{index}].currentTime")


def wait_for_triplet(page: Page, previous: int | None = None) -> int:
    """Wait until a triplet other than `previous` is on screen; return its assignment id."""
    expect(page.locator("#players")).to_be_visible()
    page.wait_for_function(
        "(previous) => { const id = document.getElementById('players').dataset.assignment;"
        " return id && id !== String(previous); }",
        arg=previous,
    )
    return int(page.get_attribute("#players", "data-assignment"))


def hear_all(page: Page, min_s: float, keys: str = "123", click: bool = False) -> None:
    """Play each snippet until it has played past the minimum, by key or by click; then
    pause. Checks on the way that each element's time really advances."""
    for index, key in enumerate(keys):
        if click:
            page.locator(".player .play").nth(index).click()
        else:
            page.keyboard.press(key)
        page.wait_for_function(
            f"document.querySelectorAll('#players audio')[{index}].currentTime > {min_s + 0.35}"
        )
        # Starting one snippet stops the others.
        playing = page.evaluate(
            "Array.from(document.querySelectorAll('#players audio')).map(a => !a.paused)"
        )
        assert playing == [i == index for i in range(3)]
    page.keyboard.press("Space")
    expect(page.locator("button.answer").first).to_be_enabled()


def test_a_volunteer_goes_from_welcome_to_thirteen_answers_by_keyboard_and_clicks(
    site_url, new_page, shoot, axe_violations, fast
):
    page = new_page()
    page.goto(site_url + "/")
    shoot(page, "01-welcome")
    assert not axe_violations(page)
    page.get_by_role("link", name="Start").click()
    shoot(page, "02-consent")
    assert not axe_violations(page)
    page.get_by_label("I agree to take part on these terms.").check()
    page.get_by_role("button", name="Agree and continue").click()
    shoot(page, "03-instructions")
    assert not axe_violations(page)
    page.get_by_role("link", name="Start the practice round").click()

    # The practice round: three gold triplets, each with its answer shown afterwards.
    shown = None
    for i in range(3):
        shown = wait_for_triplet(page, shown)
        expect(page.locator("#practice-banner")).to_have_text(
            f"Practice round: question {i + 1} of 3"
        )
        hear_all(page, FAST_MIN_S)
        page.keyboard.press("Shift+Digit1")
        expect(page.locator("#next")).to_be_visible()
        expect(page.locator("#feedback")).to_contain_text("the other two are parts of one piece")
        expect(page.locator(".player.correct")).to_have_count(1)
        if i == 0:
            shoot(page, "04-practice-feedback")
        expect(page.locator("#next")).to_be_focused()
        page.keyboard.press("Enter")
    expect(page.locator("#practice-banner")).to_be_hidden()

    # Ten real triplets by keyboard alone: play with 1/2/3 or A/B/C, answer with Shift+digit.
    for i in range(10):
        shown = wait_for_triplet(page, shown)
        if i == 0:
            assert not axe_violations(page)
            shoot(page, "05-listen")
        hear_all(page, FAST_MIN_S, keys="abc" if i % 2 else "123")
        page.keyboard.press(f"Shift+Digit{i % 3 + 1}")
        if i < 9:
            expect(page.locator("#answered-count")).to_have_text(str(i + 1))
    expect(page.locator("#thanks")).to_be_visible()
    expect(page.locator("#thanks-title")).to_have_text("That makes 10 answers. Thank you!")
    shoot(page, "06-thanks")
    expect(page.locator("#keep-going")).to_be_focused()
    page.keyboard.press("Enter")

    # Three more by mouse.
    for i in range(3):
        shown = wait_for_triplet(page, shown)
        hear_all(page, FAST_MIN_S, click=True)
        page.get_by_role("button", name="Can't tell" if i == 2 else "B is the odd one").click()
        expect(page.locator("#answered-count")).to_have_text(str(11 + i))

    real = Judgment.objects.filter(practice=False).order_by("id")
    assert Judgment.objects.filter(practice=True).count() == 3
    assert real.count() == 13
    assert real.last().odd_slot is None  # "can't tell"
    for judgment in Judgment.objects.all():
        assert all(ms >= FAST_MIN_S * 1000 for ms in judgment.listen_ms), judgment.listen_ms
        assert judgment.plays == [1, 1, 1]
        assert judgment.seeks == [0, 0, 0]
        assert judgment.viewport == "desktop"
        assert judgment.language == "en"
        assert judgment.response_ms >= 3 * FAST_MIN_S * 1000
    page.goto(site_url + "/listen/history/")
    expect(page.get_by_text("You have given 13 answers")).to_be_visible()
    shoot(page, "07-history")
    assert not axe_violations(page)
    assert not page.errors


def test_answers_stay_locked_until_each_snippet_has_played_four_seconds(site_url, new_page, shoot):
    no_practice()
    page = new_page()
    consent(page, site_url)
    page.goto(site_url + "/listen/")
    wait_for_triplet(page)
    answers = page.locator("button.answer")
    hint = page.locator("#lock-hint")
    expect(hint).to_have_text(
        "Answers unlock once each snippet has played for 4 s. Still to hear: A, B, C."
    )

    # Without a mouse: Tab to the first player and press Enter.
    page.locator("#answered-count").focus()
    while page.evaluate("document.activeElement.classList.contains('play')") is False:
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#players audio').currentTime > 2")
    assert all(answers.nth(i).is_disabled() for i in range(4))
    page.keyboard.press("Shift+Digit1")  # ignored while locked
    shoot(page, "08-locked")
    page.wait_for_function("document.querySelector('#players audio').currentTime > 4.3")
    expect(hint).to_have_text(
        "Answers unlock once each snippet has played for 4 s. Still to hear: B, C."
    )
    page.keyboard.press("Space")  # pauses
    assert page.evaluate("document.querySelector('#players audio').paused")
    page.keyboard.press("2")
    page.wait_for_function("document.querySelectorAll('#players audio')[1].currentTime > 4.3")
    assert all(answers.nth(i).is_disabled() for i in range(4))
    page.keyboard.press("3")
    page.wait_for_function("document.querySelectorAll('#players audio')[2].currentTime > 4.3")
    expect(answers.first).to_be_enabled()
    expect(hint).to_have_text("All three heard: pick the odd one out.")
    page.keyboard.press("n")
    expect(page.locator("#answered-count")).to_have_text("1")
    judgment = Judgment.objects.get()
    assert judgment.odd_slot is None
    assert min(judgment.listen_ms) >= 4000
    assert not page.errors


def test_a_double_click_stores_one_judgment(site_url, new_page, fast):
    no_practice()
    page = new_page()
    page.goto(site_url + "/consent/")
    page.get_by_label("I agree to take part on these terms.").check()
    page.get_by_role("button", name="Agree and continue").dblclick()
    expect(page).to_have_url(site_url + "/listen/instructions/")
    assert Listener.objects.count() == 1
    page.goto(site_url + "/listen/")
    first = wait_for_triplet(page)
    hear_all(page, FAST_MIN_S)
    page.get_by_role("button", name="A is the odd one").dblclick()
    expect(page.locator("#answered-count")).to_have_text("1")
    expect(page.locator("button.answer").first).to_be_disabled()  # the next one is locked
    assert Judgment.objects.count() == 1
    assert Judgment.objects.get().assignment_id == first
    assert not page.errors


def test_the_listening_page_works_on_a_360_px_phone(
    site_url, new_page, shoot, axe_violations, fast
):
    no_practice()
    page = new_page(viewport=(360, 740))
    consent(page, site_url)
    shoot(page, "09-phone-instructions")
    page.goto(site_url + "/listen/")
    wait_for_triplet(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for index in range(3):
        page.locator(".player .play").nth(index).tap()
        played = f"document.querySelectorAll('#players audio')[{index}].currentTime"
        page.wait_for_function(f"{played} > {FAST_MIN_S + 0.35}")
    page.locator(".player .play").nth(2).tap()  # pause
    page.locator(".player .seek").nth(1).fill("5")  # drag B's slider to 5 s
    assert audio_time(page, 1) == pytest.approx(5.0, abs=0.5)
    shoot(page, "10-phone-listen")
    assert not axe_violations(page)
    box = page.get_by_role("button", name="C is the odd one").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 120  # a large touch target
    page.get_by_role("button", name="C is the odd one").tap()
    expect(page.locator("#answered-count")).to_have_text("1")
    judgment = Judgment.objects.get()
    assert judgment.viewport == "phone"
    assert sorted(judgment.plays) == [1, 1, 1]
    assert sorted(judgment.seeks) == [0, 0, 1]
    assert not page.errors


def test_a_failed_audio_load_offers_retry_and_skip(site_url, new_page, shoot):
    no_practice()
    page = new_page()
    consent(page, site_url)
    page.route("**/media/**", lambda route: route.abort())
    page.goto(site_url + "/listen/")
    error = page.locator("#load-error")
    expect(error).to_be_visible()
    expect(page.locator("#load-error-text")).to_contain_text("did not load")
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.get_by_role("button", name="Skip this one")).to_be_visible()
    shoot(page, "11-load-failed")
    failed = Assignment.objects.get()

    page.get_by_role("button", name="Skip this one").click()
    expect(page.locator("#feedback")).to_have_text("Skipped; here is another one.")
    expect(error).to_be_visible()  # the next one fails too while media are blocked
    failed.refresh_from_db()
    assert failed.skip_reason == "load-failed"
    triplet = Triplet.objects.get(id=failed.triplet_id)
    assert triplet.served == 0  # back in the pool for others

    page.unroute("**/media/**")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#players")).to_be_visible()
    expect(error).to_be_hidden()
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('#players audio').currentTime > 0.5")
    assert [e for e in page.errors if "ERR_FAILED" not in e] == []


def test_an_answer_given_offline_is_sent_when_the_connection_returns(
    site_url, new_page, shoot, fast
):
    no_practice()
    page = new_page()
    consent(page, site_url)
    page.goto(site_url + "/listen/")
    wait_for_triplet(page)
    page.wait_for_load_state("networkidle")  # the next triplet's audio is in memory too
    page.context.set_offline(True)
    hear_all(page, FAST_MIN_S)
    page.get_by_role("button", name="B is the odd one").click()
    expect(page.locator("#outbox-status")).to_have_text("1 answer waiting to be sent.")
    expect(page.locator("#answered-count")).to_have_text("1")
    expect(page.locator("#players")).to_be_visible()  # the fetched-ahead triplet, offline
    shoot(page, "12-offline")
    assert Judgment.objects.count() == 0

    page.context.set_offline(False)
    expect(page.locator("#outbox-status")).to_be_hidden()
    assert Judgment.objects.count() == 1
    assert page.evaluate("localStorage.getItem('oddball.outbox')") == "[]"


def test_an_expired_assignment_is_replaced_not_an_error(site_url, new_page, fast):
    no_practice()
    page = new_page()
    consent(page, site_url)
    page.goto(site_url + "/listen/")
    first = wait_for_triplet(page)
    hear_all(page, FAST_MIN_S)
    Assignment.objects.filter(id=first).update(expires_at="2000-01-01T00:00:00Z")
    page.get_by_role("button", name="A is the odd one").click()
    expect(page.locator("#feedback")).to_have_text("That one had timed out; here is a fresh one.")
    expect(page.locator("#players")).to_be_visible()
    assert Judgment.objects.count() == 0
    assert [e for e in page.errors if "410 (Gone)" not in e] == []


def test_a_listener_reports_a_problem_with_a_snippet(site_url, new_page, shoot):
    no_practice()
    page = new_page()
    consent(page, site_url)
    page.goto(site_url + "/listen/")
    wait_for_triplet(page)
    page.get_by_role("button", name="Report a problem with snippet B").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("It is broken or distorted").check()
    dialog.get_by_label("Anything to add? (optional)").fill("crackles")
    shoot(page, "13-report")
    dialog.get_by_role("button", name="Send report").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#feedback")).to_have_text(
        "Thanks for the report; a curator will look at it."
    )
    report = SnippetReport.objects.get()
    assert (report.reason, report.note) == ("broken", "crackles")
    snippet_b = page.evaluate("document.querySelectorAll('#players audio')[1].dataset.snippet")
    assert report.snippet_id == int(snippet_b)
    assert not page.errors


def test_an_anonymous_listener_signs_up_and_keeps_the_answers(
    site_url, new_page, shoot, axe_violations, fast
):
    no_practice()
    page = new_page()
    consent(page, site_url)
    page.goto(site_url + "/listen/")
    shown = None
    for _ in range(2):
        shown = wait_for_triplet(page, shown)
        hear_all(page, FAST_MIN_S)
        page.keyboard.press("Shift+Digit3")
    expect(page.locator("#answered-count")).to_have_text("2")
    page.goto(site_url + "/accounts/signup/")
    shoot(page, "14-signup")
    assert not axe_violations(page)
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password", exact=True).fill("a-long-enough-passphrase")
    page.get_by_label("Password confirmation").fill("a-long-enough-passphrase")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(site_url + "/listen/")
    expect(page.locator("#answered-count")).to_have_text("2")
    assert Judgment.objects.filter(listener__user__username="ada").count() == 2

    # Another device: signing in brings the listener, and its history, along.
    other = new_page(viewport=(390, 844))
    other.goto(site_url + "/accounts/login/")
    shoot(other, "15-login")
    assert not axe_violations(other)
    other.get_by_label("Username").fill("ada")
    other.get_by_label("Password").fill("a-long-enough-passphrase")
    other.get_by_role("button", name="Sign in").click()
    expect(other.locator("#answered-count")).to_have_text("2")
    other.goto(site_url + "/listen/history/")
    expect(other.get_by_text("You have given 2 answers")).to_be_visible()
    assert not page.errors and not other.errors


def test_a_listener_with_nothing_left_is_thanked(site_url, new_page, shoot):
    page = new_page()
    consent(page, site_url)
    Triplet.objects.update(active=False)
    page.goto(site_url + "/listen/")
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#done")).to_contain_text("nothing left for you to judge")
    shoot(page, "16-done")
    assert not page.errors


def test_the_listening_page_speaks_german_and_records_the_language(
    site_url, new_page, shoot, axe_violations, fast
):
    no_practice()
    page = new_page(locale="de-DE")
    page.goto(site_url + "/consent/")
    assert page.get_attribute("html", "lang") == "de"
    page.locator("input[name=consent]").check()
    page.locator("main button[type=submit]").click()
    page.goto(site_url + "/listen/")
    wait_for_triplet(page)
    with translation.override("de"):
        locked = gettext(
            "Answers unlock once each snippet has played for {min} s. Still to hear: {rest}."
        )
        unlocked = gettext("All three heard: pick the odd one out.")
    assert unlocked != "All three heard: pick the odd one out."
    expect(page.locator("#lock-hint")).to_have_text(
        locked.format(min="0,6", rest="A, B, C")  # numbers in the German way
    )
    hear_all(page, FAST_MIN_S)
    expect(page.locator("#lock-hint")).to_have_text(unlocked)
    shoot(page, "17-german")
    assert not axe_violations(page)
    page.keyboard.press("Shift+Digit2")
    expect(page.locator("#answered-count")).to_have_text("1")
    assert Judgment.objects.get().language == "de"
    assert not page.errors
