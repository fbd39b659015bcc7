"""Similar tracks in real Chromium: upload a clip of a track, see the nearest tracks with
that one first, play one; the embedding map shows every track and plays the one chosen."""

from pathlib import Path

import soundfile as sf
from django.conf import settings
from playwright.sync_api import expect

from embeddings.models import Snippet, Track
from embeddings.services import snippets_embed_mel_stats

CLIP_S = 20.0  # s; the session's tracks are the corpus's shortest, 20 s and longer


def clip_cut(track: Track, folder: Path) -> Path:
    """CLIP_S seconds from the middle of the track's stored original, as Ogg Vorbis."""
    original = Path(settings.MEDIA_ROOT) / track.original.name
    info = sf.info(str(original))
    start = max(0, round((info.duration - CLIP_S) / 2 * info.samplerate))
    wave, rate = sf.read(
        str(original), start=start, frames=round(CLIP_S * info.samplerate), dtype="float32"
    )
    out = folder / "my clip.ogg"
    sf.write(str(out), wave, rate, format="OGG")
    return out


def playing(page: object, selector: str) -> None:
    page.wait_for_function(
        "(s) => { const a = document.querySelector(s); return a && a.currentTime > 0.5; }",
        arg=selector,
        timeout=15_000,
    )


def test_a_visitor_uploads_a_clip_hears_the_nearest_tracks_and_explores_the_map(
    new_page, site_url, tmp_path, shoot, axe_violations
):
    snippets_embed_mel_stats(list(Snippet.objects.values_list("id", flat=True)))
    tracks = list(Track.objects.order_by("-duration_s"))
    track = tracks[0]
    clip = clip_cut(track, tmp_path)

    page = new_page()
    page.goto(f"{site_url}/similar/")
    points = page.locator("circle.map-point")
    expect(points).to_have_count(len(tracks))
    expect(page.locator(".map-legend li").first).to_be_visible()

    page.set_input_files("#audio-file", str(clip))
    page.get_by_role("button", name="Compare the clip").click()
    rows = page.locator("tr.result")
    expect(rows.first).to_be_visible(timeout=20_000)
    assert rows.count() == min(10, len(tracks))
    assert rows.first.get_attribute("data-track") == str(track.id)
    expect(page.locator("#similar-status")).to_have_text(f"{rows.count()} tracks found.")
    expect(page.locator("#results-space")).to_contain_text("mel-stats@1")

    page.evaluate("() => document.querySelector('tr.result audio').play()")
    playing(page, "tr.result audio")
    shoot(page, "40-similar-tracks")

    # The map: choosing a point plays its track; t-SNE moves the points.
    point = points.nth(2)
    before = point.get_attribute("cx")
    point.click()
    expect(page.locator("#map-caption")).to_contain_text(point.get_attribute("data-title"))
    playing(page, "#map-audio")
    page.get_by_label("t-SNE").check()
    assert point.get_attribute("cx") != before
    assert page.evaluate("() => document.querySelector('tr.result audio').paused")

    # A query from the chosen point's snippet leaves out its own track.
    page.get_by_role("button", name="Find tracks like this").click()
    expect(page.locator("#results-title")).to_have_text("Nearest tracks to the snippet")
    shown = {rows.nth(i).get_attribute("data-track") for i in range(rows.count())}
    assert point.get_attribute("data-track") not in shown
    assert not page.errors
    assert not axe_violations(page)


def test_a_file_that_is_not_audio_gets_a_clear_message(new_page, site_url, tmp_path):
    snippets_embed_mel_stats(list(Snippet.objects.values_list("id", flat=True)))
    fake = tmp_path / "song.mp3"
    fake.write_text("not music at all\n" * 100)
    page = new_page()
    page.goto(f"{site_url}/similar/")
    page.set_input_files("#audio-file", str(fake))
    page.get_by_role("button", name="Compare the clip").click()
    expect(page.locator("#similar-status")).to_contain_text(
        "Could not search: audio: This audio cannot be compared: not an audio file"
    )
    expect(page.locator("#results")).to_be_hidden()
