// The transition page: a client of the listening API under /api/v1/transitions/.
//
// A rendering is shown only once its audio is in memory, and the next one is fetched while
// the current one is rated. The seam is marked on the bar. Rating unlocks once the seam
// has played through without a jump (from SEAM_BEFORE_S before it to SEAM_AFTER_S after
// it, measured on the audio clock) and the rendering has played for the minimum in all
// (measured on the wall clock, like the odd-one-out page). "It broke here" keeps the
// playback time of the last tap. A rating that cannot be sent waits in the outbox; the
// server's idempotent submit makes resending safe, and the rating buttons are disabled
// while their request runs. Shared helpers: client.js.
(function () {
  "use strict";
  const root = document.getElementById("transitions");
  if (!root) return;
  const { fmt, api, detail, viewport, typing, Outbox } = window.Oddball;

  const T = JSON.parse(document.getElementById("transition-strings").textContent);
  const cfg = root.dataset;
  const seamBefore = parseFloat(cfg.seamBeforeS);
  const seamAfter = parseFloat(cfg.seamAfterS);
  const batch = parseInt(cfg.batch, 10);
  const SEEK_STEP_S = 5;
  const $ = (id) => document.getElementById(id);
  const lang = document.documentElement.lang || undefined;
  const tenths = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const plain = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });

  const audio = root.querySelector("audio");
  const playButton = $("play");
  const timeline = $("timeline");
  const rateButtons = Array.from(root.querySelectorAll("button.rate"));

  let rated = parseInt(cfg.rated, 10);
  let current = null; // the rendering on screen and what has been measured on it
  let upcoming = null; // a promise of the next prepared rendering
  let busy = false; // a request for the current rendering is running

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function say(message) {
    $("feedback").textContent = message;
  }

  // --- talking to the API -----------------------------------------------------------------

  class LoadError extends Error {
    constructor(message, assignment) {
      super(message);
      this.assignment = assignment; // set when the assignment is known but its audio failed
    }
  }

  async function fetchAssignment(after) {
    const query = new URLSearchParams();
    after.forEach((id) => query.append("after", id));
    let response;
    try {
      response = await api("GET", cfg.nextUrl + "?" + query);
    } catch (e) {
      throw new LoadError(T.offline);
    }
    if (response.status === 204) return null;
    if (response.status === 429) {
      // Answering faster than the music plays (or too many requests): wait, then go on.
      const body = await response.json().catch(() => ({}));
      const wait = body.wait_s || parseFloat(response.headers.get("Retry-After")) || 5;
      say(fmt(T.slowed, { s: Math.ceil(wait) }));
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      return fetchAssignment(after);
    }
    if (!response.ok) throw new LoadError(fmt(T.error, { detail: await detail(response) }));
    return response.json();
  }

  async function fetchAudio(assignment) {
    let response;
    try {
      response = await fetch(assignment.rendering.url, { credentials: "same-origin" });
    } catch (e) {
      response = null;
    }
    if (!response || !response.ok) throw new LoadError(T.load_failed, assignment);
    return { assignment, url: URL.createObjectURL(await response.blob()) };
  }

  async function prepare(after) {
    const assignment = await fetchAssignment(after);
    return assignment && fetchAudio(assignment);
  }

  // --- the outbox: ratings given while the connection was down -----------------------------

  const outbox = new Outbox("oddball.transition-outbox", cfg.ratingUrl, {
    sent: (data) => (rated = data.rated),
    changed: renderCounter,
  });

  function renderCounter() {
    const waiting = outbox.entries().length;
    $("rated-count").textContent = rated + waiting;
    const status = $("outbox-status");
    status.hidden = waiting === 0;
    status.textContent = waiting === 1 ? T.outbox_one : fmt(T.outbox_other, { n: waiting });
  }

  // --- showing a rendering ------------------------------------------------------------------

  function prefetch() {
    upcoming = prepare([current.assignment.assignment]);
    upcoming.catch(() => {}); // reported when it is needed, not before
  }

  async function showNext() {
    show("player", false);
    show("ratings", false);
    show("load-error", false);
    show("loading", true);
    $("lock-hint").textContent = "";
    let prepared;
    try {
      // A prefetch that failed (offline then) is tried once more now.
      prepared = upcoming ? await upcoming.catch(() => prepare([])) : await prepare([]);
    } catch (e) {
      upcoming = null;
      return showLoadError(e);
    }
    upcoming = null;
    show("loading", false);
    if (!prepared) {
      show("done", true);
      return;
    }
    present(prepared);
    prefetch();
  }

  function present(prepared) {
    const r = prepared.assignment.rendering;
    current = {
      assignment: prepared.assignment,
      url: prepared.url,
      duration: r.duration_s,
      seam: r.seam_s,
      minMs: prepared.assignment.min_listen_s * 1000,
      heardMs: 0,
      plays: 0,
      seeks: 0,
      firstPlay: null,
      since: null, // performance.now() when the current stretch of playing began
      runFrom: null, // audio time where playback last started without a jump
      seamHeard: false,
      brokeAt: null,
    };
    busy = false;
    audio.src = prepared.url;
    const seamShare = (100 * r.seam_s) / r.duration_s;
    $("seam-marker").style.left = seamShare + "%";
    $("seam-text").textContent = fmt(T.seam_at, { at: tenths.format(r.seam_s) });
    timeline.setAttribute("aria-valuemax", r.duration_s.toFixed(1));
    $("player").dataset.assignment = prepared.assignment.assignment;
    $("player").dataset.style = r.style;
    show("player", true);
    show("ratings", true);
    render();
  }

  function release() {
    if (!current) return;
    audio.pause();
    audio.removeAttribute("src");
    audio.load();
    URL.revokeObjectURL(current.url);
    current = null;
  }

  function showLoadError(error) {
    show("loading", false);
    show("player", false);
    show("ratings", false);
    $("load-error-text").textContent = error.message;
    show("skip", Boolean(error.assignment));
    show("load-error", true);
    $("retry").disabled = false;
    $("skip").disabled = false;
    showLoadError.last = error;
    $("retry").focus();
  }

  $("retry").addEventListener("click", async () => {
    const error = showLoadError.last;
    $("retry").disabled = true;
    $("skip").disabled = true;
    release();
    if (!error.assignment) return showNext();
    show("load-error", false);
    show("loading", true);
    try {
      present(await fetchAudio(error.assignment));
      show("loading", false);
      prefetch();
    } catch (e) {
      showLoadError(e);
    }
  });

  $("skip").addEventListener("click", async () => {
    const error = showLoadError.last;
    $("retry").disabled = true;
    $("skip").disabled = true;
    release();
    const url = cfg.skipUrl.replace("/0/", "/" + error.assignment.assignment + "/");
    let response;
    try {
      response = await api("POST", url, { reason: "load-failed" });
    } catch (e) {
      return showLoadError(new LoadError(T.offline, error.assignment));
    }
    if (!response.ok) {
      return showLoadError(
        new LoadError(fmt(T.error, { detail: await detail(response) }), error.assignment),
      );
    }
    say(T.skipped);
    showNext();
  });

  // --- playing and measuring ----------------------------------------------------------------

  function accumulate() {
    if (current === null || current.since === null) return;
    const now = performance.now();
    current.heardMs += now - current.since;
    current.since = audio.paused ? null : now;
  }

  // The seam counts as heard once one run of playback has covered it with its margins.
  function seamCheck() {
    if (current === null || current.runFrom === null || current.seamHeard) return;
    const from = Math.max(0, current.seam - seamBefore);
    const to = Math.min(current.duration - 0.25, current.seam + seamAfter);
    if (current.runFrom <= from + 0.05 && audio.currentTime >= to) current.seamHeard = true;
  }

  function ready() {
    return current !== null && current.seamHeard && current.heardMs >= current.minMs;
  }

  function share(seconds) {
    return Math.min(100, Math.max(0, (100 * seconds) / current.duration)) + "%";
  }

  // The bar and the clock; cheap enough for every animation frame while playing.
  function renderPosition() {
    if (!current) return;
    const at = audio.currentTime;
    $("played").style.width = share(at);
    const text = fmt(T.position, {
      at: tenths.format(Math.min(at, current.duration)),
      length: tenths.format(current.duration),
    });
    $("time").textContent = text;
    timeline.setAttribute("aria-valuenow", at.toFixed(1));
    timeline.setAttribute("aria-valuetext", text);
  }

  function render() {
    if (!current) return;
    renderPosition();
    const playing = !audio.paused;
    root.classList.toggle("playing", playing);
    playButton.setAttribute("aria-pressed", String(playing));
    playButton.setAttribute("aria-label", playing ? T.pause : T.play);
    playButton.querySelector(".icon").textContent = playing ? "❚❚" : "▶";

    const marked = current.brokeAt !== null;
    $("broke").disabled = busy || current.firstPlay === null;
    show("broke-marker", marked);
    show("broke-clear", marked);
    if (marked) $("broke-marker").style.left = share(current.brokeAt);
    const brokeText = marked ? fmt(T.broke_at, { at: tenths.format(current.brokeAt) }) : "";
    if ($("broke-text").textContent !== brokeText) $("broke-text").textContent = brokeText;

    const isReady = ready();
    rateButtons.forEach((b) => (b.disabled = busy || !isReady));
    let hint = T.unlocked;
    if (!current.seamHeard) {
      hint = fmt(T.locked_seam, { before: plain.format(seamBefore), after: plain.format(seamAfter) });
    } else if (!isReady) {
      const heard = Math.floor(current.heardMs / 100) / 10;
      hint = fmt(T.locked_time, {
        min: plain.format(current.minMs / 1000),
        heard: tenths.format(heard),
      });
    }
    if ($("lock-hint").textContent !== hint) $("lock-hint").textContent = hint;
  }

  function frame() {
    if (!current || audio.paused) return;
    renderPosition();
    requestAnimationFrame(frame);
  }

  audio.addEventListener("play", () => {
    if (!current) return;
    current.plays += 1;
    if (current.firstPlay === null) current.firstPlay = performance.now();
    if (current.runFrom === null) current.runFrom = audio.currentTime;
    current.since = performance.now();
    render();
    requestAnimationFrame(frame);
  });
  // Any jump, by the listener or by replaying from the end, starts a new run.
  audio.addEventListener("seeking", () => current && (current.runFrom = audio.currentTime));
  audio.addEventListener("timeupdate", () => {
    accumulate();
    seamCheck();
    render();
  });
  ["pause", "ended"].forEach((name) =>
    audio.addEventListener(name, () => {
      accumulate();
      seamCheck();
      if (current) current.since = null;
      render();
    }),
  );
  audio.addEventListener("error", () => {
    if (!current || !audio.getAttribute("src")) return;
    const assignment = current.assignment;
    release();
    showLoadError(new LoadError(T.load_failed, assignment));
  });

  function toggle() {
    if (!current || busy) return;
    if (audio.paused) {
      audio.play().catch((e) => say(fmt(T.error, { detail: e.message })));
    } else {
      audio.pause();
    }
  }

  function seekTo(seconds) {
    if (!current || busy) return;
    audio.currentTime = Math.min(Math.max(0, seconds), current.duration);
    current.seeks += 1;
    renderPosition();
  }

  function markBroke() {
    if (!current || busy || current.firstPlay === null) return;
    const at = Math.min(Math.max(0, audio.currentTime), current.duration);
    current.brokeAt = Math.round(at * 100) / 100;
    render();
  }

  playButton.addEventListener("click", toggle);
  $("broke").addEventListener("click", markBroke);
  $("broke-clear").addEventListener("click", () => {
    if (!current) return;
    current.brokeAt = null;
    render();
    $("broke").focus();
  });

  // Tap or click the bar to jump there; drag to scrub (one seek per gesture).
  function timeAt(event) {
    const box = timeline.getBoundingClientRect();
    return (current.duration * (event.clientX - box.left)) / box.width;
  }
  timeline.addEventListener("pointerdown", (e) => {
    if (!current || busy) return;
    timeline.setPointerCapture(e.pointerId);
    seekTo(timeAt(e));
  });
  timeline.addEventListener("pointermove", (e) => {
    if (!current || !timeline.hasPointerCapture(e.pointerId)) return;
    audio.currentTime = Math.min(Math.max(0, timeAt(e)), current.duration);
    renderPosition();
  });

  // --- rating -------------------------------------------------------------------------------

  async function rate(value) {
    if (!current || busy || !ready()) return;
    busy = true;
    audio.pause();
    accumulate();
    render();
    const body = {
      assignment: current.assignment.assignment,
      rating: value,
      response_ms: Math.round(performance.now() - current.firstPlay),
      listen_ms: Math.round(current.heardMs),
      broke_at_s: current.brokeAt,
      plays: current.plays,
      seeks: current.seeks,
      viewport: viewport(),
      language: document.documentElement.lang || "",
    };
    say(T.sending);
    let response;
    try {
      response = await api("POST", cfg.ratingUrl, body);
    } catch (e) {
      response = null;
    }
    if (!response || response.status >= 500 || response.status === 429) {
      outbox.add(body);
      say(T.offline);
      return advance();
    }
    if (response.status === 410) {
      say(T.expired);
      return advance();
    }
    if (response.status === 403 || response.status === 409) {
      // Not this listener's or given back meanwhile (another tab): it can never be stored.
      say(fmt(T.error, { detail: await detail(response) }));
      return advance();
    }
    if (!response.ok) {
      say(fmt(T.error, { detail: await detail(response) }));
      busy = false;
      render();
      return;
    }
    const data = await response.json();
    rated = data.rated;
    renderCounter();
    say(T.saved);
    if (data.created && rated > 0 && rated % batch === 0) {
      $("thanks-title").textContent = fmt(T.batch_thanks, { n: rated });
      release();
      show("player", false);
      show("ratings", false);
      $("lock-hint").textContent = "";
      show("thanks", true);
      $("keep-going").focus();
      return;
    }
    advance();
  }

  function advance(focusPlay) {
    release();
    busy = false;
    showNext().then(() => {
      if (focusPlay && current) playButton.focus();
    });
  }

  rateButtons.forEach((b) => b.addEventListener("click", () => rate(parseInt(b.dataset.rating, 10))));
  $("keep-going").addEventListener("click", () => {
    show("thanks", false);
    advance(true);
  });

  // --- keyboard -----------------------------------------------------------------------------

  const RATINGS = { Digit1: 1, Digit2: 2, Digit3: 3, Digit4: 4, Digit5: 5 };
  ["Numpad1", "Numpad2", "Numpad3", "Numpad4", "Numpad5"].forEach((code, i) => (RATINGS[code] = i + 1));

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey || e.shiftKey || typing(e.target) || !current) return;
    if (RATINGS[e.code] !== undefined) {
      e.preventDefault();
      rate(RATINGS[e.code]);
    } else if (e.code === "KeyB") {
      e.preventDefault();
      markBroke();
    } else if (e.code === "ArrowLeft" || e.code === "ArrowRight") {
      e.preventDefault();
      seekTo(audio.currentTime + (e.code === "ArrowLeft" ? -SEEK_STEP_S : SEEK_STEP_S));
    } else if (e.code === "Space") {
      e.preventDefault(); // Space plays and pauses here; Enter presses the focused button
      toggle();
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.code === "Space" && current && !typing(e.target)) e.preventDefault();
  });

  window.addEventListener("online", () => {
    outbox.flush();
    if (!$("load-error").hidden && !showLoadError.last.assignment) $("retry").click();
  });
  setInterval(() => outbox.entries().length && outbox.flush(), 15000);

  renderCounter();
  outbox.flush();
  showNext();
})();
