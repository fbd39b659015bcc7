// The odd-one-out page: one snippet plays at a time, listening time is measured per snippet,
// and the answers unlock once each snippet has been heard for the minimum time.
(function () {
  "use strict";
  const root = document.getElementById("listen");
  if (!root) return;
  const minMs = parseFloat(root.dataset.minListenS) * 1000;
  const form = document.getElementById("answer-form");
  const players = Array.from(root.querySelectorAll(".player"));
  const heard = {};
  let firstPlay = null;

  function unlockIfReady() {
    const ready = players.every((p) => heard[p.dataset.position] >= minMs);
    form.querySelectorAll("button[name=answer]").forEach((b) => (b.disabled = !ready));
    form.querySelector(".lock-hint").hidden = ready;
  }

  players.forEach((player) => {
    const position = player.dataset.position;
    const audio = player.querySelector("audio");
    const bar = player.querySelector("progress");
    heard[position] = 0;
    let last = null;
    audio.addEventListener("play", () => {
      players.forEach((other) => {
        if (other !== player) other.querySelector("audio").pause();
      });
      if (firstPlay === null) firstPlay = performance.now();
      last = performance.now();
    });
    audio.addEventListener("timeupdate", () => {
      if (last !== null && !audio.paused) {
        const now = performance.now();
        heard[position] += now - last;
        last = now;
      }
      bar.value = Math.min(1, heard[position] / minMs);
      unlockIfReady();
    });
    audio.addEventListener("pause", () => (last = null));
    player.querySelector(".play").addEventListener("click", () => {
      if (audio.paused) audio.play(); else audio.pause();
    });
  });

  document.addEventListener("keydown", (e) => {
    const index = ["1", "2", "3"].indexOf(e.key);
    if (index >= 0) players[index].querySelector(".play").click();
    if (e.key === " ") {
      e.preventDefault();
      players.forEach((p) => p.querySelector("audio").pause());
    }
  });

  form.addEventListener("submit", () => {
    form.response_ms.value = Math.round(firstPlay === null ? 0 : performance.now() - firstPlay);
    players.forEach((p) => {
      form["listen_ms_" + p.dataset.position].value = Math.round(heard[p.dataset.position]);
    });
    // Disable after the browser has taken the submitter's value, so nothing is sent twice.
    setTimeout(() => form.querySelectorAll("button").forEach((b) => (b.disabled = true)), 0);
  });
  unlockIfReady();
})();
