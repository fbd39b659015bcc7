"""The browser-test machinery works: Chromium reaches the live server and plays its media,
served with HTTP Range."""

import requests


def test_a_snippet_plays_in_an_audio_element(site_url, listening_data, new_page):
    src = site_url + listening_data.snippets[0].audio.url
    ranged = requests.get(src, headers={"Range": "bytes=0-99"}, timeout=10)
    assert ranged.status_code == 206
    assert len(ranged.content) == 100

    page = new_page()
    page.goto(site_url + "/")
    page.evaluate(
        """(src) => {
            const audio = document.createElement('audio');
            audio.id = 'smoke-audio';
            audio.src = src;
            document.body.append(audio);
            return audio.play();
        }""",
        src,
    )
    page.wait_for_function("document.getElementById('smoke-audio').currentTime > 0.5")

    assert not page.errors
