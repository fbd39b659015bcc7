// The "what plays next" page: each candidate's play button asks the render endpoint for the
// transition into it. A rendering that is not made yet answers 202 with Retry-After; the
// button asks again after that many seconds, a bounded number of times, then plays it.
(function () {
  "use strict";
  const root = document.getElementById("next");
  if (!root || !root.dataset.clip) return;

  const T = JSON.parse(document.getElementById("next-strings").textContent);
  const MAX_POLLS = 40; // about two minutes at the server's usual Retry-After
  const styleSelect = document.getElementById("style-select");

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
  }

  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function rendering(to) {
    const query = new URLSearchParams({
      from: root.dataset.clip,
      to: to,
      style: styleSelect ? styleSelect.value : "crossfade",
    });
    for (let poll = 0; poll < MAX_POLLS; poll++) {
      const response = await fetch(`${root.dataset.renderUrl}?${query}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 200) return body;
      if (response.status !== 202 && response.status !== 429) {
        throw new Error(body.detail || `HTTP ${response.status}`);
      }
      const after = parseFloat(response.headers.get("Retry-After")) || 3;
      say(to, T.rendering);
      await wait(after * 1000);
    }
    throw new Error(T.gave_up);
  }

  function row(clip) {
    return root.querySelector(`.candidate[data-clip="${clip}"]`);
  }

  function say(clip, message) {
    row(clip).querySelector(".status").textContent = message;
  }

  async function play(tr) {
    const clip = tr.dataset.clip;
    const button = tr.querySelector("button.play");
    const audio = tr.querySelector("audio");
    button.disabled = true;
    say(clip, T.asking);
    try {
      const made = await rendering(clip);
      root.querySelectorAll("audio").forEach((other) => other !== audio && other.pause());
      audio.src = made.url;
      audio.hidden = false;
      say(clip, fmt(T.ready, { seam: made.seam_s.toFixed(1) }));
      await audio.play();
    } catch (err) {
      say(clip, err.message === T.gave_up ? T.gave_up : fmt(T.failed, { detail: err.message }));
    } finally {
      button.disabled = false;
    }
  }

  root.querySelectorAll(".candidate").forEach((tr) => {
    tr.querySelector("button.play").addEventListener("click", () => play(tr));
  });
})();
