"""What plays next in real Chromium: the ranked clips of other tracks, and a transition
rendered on request and played."""

from playwright.sync_api import expect

from embeddings.models import Clip, Rendering, Track
from embeddings.services import MEL_STATS_SPACE, clip_index_build, clips_embed_mel_stats


def test_a_listener_plays_the_transition_into_a_ranked_next_clip(
    new_page, transitions_url, shoot, axe_violations
):
    for track in Track.objects.all():
        clips_embed_mel_stats(track.id)
    clip_index_build(MEL_STATS_SPACE)
    track = Track.objects.filter(clips__isnull=False).first()
    last = Clip.objects.filter(track=track).order_by("position").last()
    page = new_page()
    page.goto(f"{transitions_url}/tracks/{track.id}/next/")
    rows = page.locator("tr.candidate")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 3
    first = rows.first
    to_clip = int(first.get_attribute("data-clip"))
    assert Clip.objects.get(id=to_clip).track_id != track.id
    first.get_by_role("button", name="Play transition").click()
    expect(first.locator(".status")).to_contain_text("the seam comes at", timeout=20_000)
    page.wait_for_function(
        "(clip) => { const a = document.querySelector(`tr[data-clip='${clip}'] audio`);"
        " return a && a.currentTime > 0.5; }",
        arg=to_clip,
        timeout=15_000,
    )
    rendering = Rendering.objects.get(clip_x=last, clip_y_id=to_clip, style="crossfade")
    assert rendering.audio.name in first.locator("audio").get_attribute("src")
    shoot(page, "30-what-plays-next")
    assert not axe_violations(page)
