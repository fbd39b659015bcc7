// The odd-one-out page: a client of the listening API under /api/v1/.
//
// A triplet is shown only once all three snippets are in memory, and the next triplet is
// fetched while the current one is being answered, so switching players is instant.
// Listening time counts only while a snippet plays; the answer buttons unlock once each
// snippet has played for the minimum. An answer that cannot be sent waits in localStorage
// and goes out when the connection returns; the server's idempotent submit makes resending
// safe, and every button is disabled while its request runs. Shared helpers: client.js.
(function () {
  "use strict";
  const root = document.getElementById("listen");
  if (!root) return;
  const { fmt, api, detail, viewport, typing, Outbox } = window.Oddball;

  const T = JSON.parse(document.getElementById("listen-strings").textContent);
  const cfg = root.dataset;
  const minMs = parseFloat(cfg.minListenS) * 1000;
  const batch = parseInt(cfg.batch, 10);
  const practiceRound = parseInt(cfg.practiceRound, 10);
  const POSITIONS = ["A", "B", "C"];
  const $ = (id) => document.getElementById(id);
  const digits = minMs % 1000 ? 1 : 0; // whole seconds unless the minimum has tenths
  const seconds = new Intl.NumberFormat(document.documentElement.lang || undefined, {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });

  let practiceLeft = parseInt(cfg.practiceLeft, 10);
  let answered = parseInt(cfg.answered, 10);
  let current = null; // the triplet on screen and what has been measured on it
  let upcoming = null; // a promise of the next prepared triplet
  let busy = false; // a request for the current triplet is running
  let lastPlayed = null;

  const players = POSITIONS.map((position) => {
    const el = root.querySelector(`.player[data-position="${position}"]`);
    return {
      position,
      el,
      audio: el.querySelector("audio"),
      button: el.querySelector(".play"),
      seek: el.querySelector(".seek"),
      bar: el.querySelector("progress.heard"),
      text: el.querySelector(".heard-text"),
      since: null, // performance.now() when the current stretch of playing began
    };
  });
  const answerButtons = Array.from(root.querySelectorAll("button.answer"));

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function say(message) {
    $("feedback").textContent = message;
  }

  // --- talking to the API -----------------------------------------------------------------

  class LoadError extends Error {
    constructor(message, assignment, position) {
      super(message);
      this.assignment = assignment; // set when the triplet is known but its audio failed
      this.position = position;
    }
  }

  async function fetchAssignment(practice, after) {
    const query = new URLSearchParams();
    if (practice) query.set("practice", "true");
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
      return fetchAssignment(practice, after);
    }
    if (!response.ok) throw new LoadError(fmt(T.error, { detail: await detail(response) }));
    return response.json();
  }

  async function fetchAudio(assignment) {
    const urls = {};
    try {
      await Promise.all(
        assignment.snippets.map(async (s) => {
          let response;
          try {
            response = await fetch(s.url, { credentials: "same-origin" });
          } catch (e) {
            response = null;
          }
          if (!response || !response.ok) {
            throw new LoadError(fmt(T.load_failed, { position: s.position }), assignment, s.position);
          }
          urls[s.position] = URL.createObjectURL(await response.blob());
        }),
      );
    } catch (e) {
      Object.values(urls).forEach((u) => URL.revokeObjectURL(u));
      throw e;
    }
    return { assignment, urls };
  }

  async function prepare(practice, after) {
    const assignment = await fetchAssignment(practice, after);
    return assignment && fetchAudio(assignment);
  }

  // --- the outbox: answers given while the connection was down -----------------------------

  const outbox = new Outbox("oddball.outbox", cfg.judgmentUrl, {
    sent: (data) => (answered = data.answered),
    changed: renderCounter,
  });

  function renderCounter() {
    const waiting = outbox.entries().length;
    $("answered-count").textContent = answered + waiting;
    const status = $("outbox-status");
    status.hidden = waiting === 0;
    status.textContent = waiting === 1 ? T.outbox_one : fmt(T.outbox_other, { n: waiting });
  }

  // --- showing a triplet --------------------------------------------------------------------

  function wantPractice() {
    return practiceLeft > 0;
  }

  function prefetch() {
    const practiceNext = current.assignment.practice ? practiceLeft - 1 > 0 : false;
    upcoming = prepare(practiceNext, [current.assignment.assignment]);
    upcoming.catch(() => {}); // reported when it is needed, not before
  }

  async function showNext() {
    show("players", false);
    show("answers", false);
    show("load-error", false);
    show("next", false);
    show("loading", true);
    $("lock-hint").textContent = "";
    let prepared;
    try {
      prepared = upcoming ? await upcoming : await prepare(wantPractice(), []);
      upcoming = null;
      if (prepared && prepared.assignment.practice !== wantPractice()) {
        // Fetched ahead for the other kind of question: the server keeps it open for later.
        Object.values(prepared.urls).forEach((u) => URL.revokeObjectURL(u));
        prepared = await prepare(wantPractice(), [prepared.assignment.assignment]);
      }
    } catch (e) {
      upcoming = null;
      return showLoadError(e);
    }
    if (!prepared && wantPractice()) {
      practiceLeft = 0; // no practice questions to be had: go straight to the real ones
      return showNext();
    }
    show("loading", false);
    if (!prepared) {
      show("done", true);
      return;
    }
    present(prepared);
    prefetch();
  }

  function present(prepared) {
    current = {
      assignment: prepared.assignment,
      urls: prepared.urls,
      heard: { A: 0, B: 0, C: 0 },
      plays: { A: 0, B: 0, C: 0 },
      seeks: { A: 0, B: 0, C: 0 },
      firstPlay: null,
    };
    lastPlayed = null;
    busy = false;
    prepared.assignment.snippets.forEach((s) => {
      const p = players.find((x) => x.position === s.position);
      p.audio.src = prepared.urls[s.position];
      p.audio.dataset.snippet = s.snippet;
      p.seek.max = s.duration_s.toFixed(1);
      p.seek.value = 0;
      p.since = null;
    });
    const banner = $("practice-banner");
    banner.hidden = !prepared.assignment.practice;
    banner.textContent = fmt(T.practice_progress, {
      i: practiceRound - practiceLeft + 1,
      n: practiceRound,
    });
    $("players").dataset.assignment = prepared.assignment.assignment;
    show("players", true);
    show("answers", true);
    render();
  }

  function release() {
    if (!current) return;
    players.forEach((p) => {
      p.el.classList.remove("correct");
      p.audio.pause();
      p.audio.removeAttribute("src");
      p.audio.load();
    });
    Object.values(current.urls).forEach((u) => URL.revokeObjectURL(u));
    current = null;
  }

  function showLoadError(error) {
    show("loading", false);
    show("players", false);
    show("answers", false);
    $("load-error-text").textContent = error.message;
    show("skip", Boolean(error.assignment));
    show("load-error", true);
    $("retry").disabled = false;
    $("skip").disabled = false;
    $("load-error").dataset.assignment = error.assignment ? error.assignment.assignment : "";
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
      return showLoadError(new LoadError(T.offline, error.assignment, error.position));
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

  function accumulate(p) {
    if (p.since === null || !current) return;
    const now = performance.now();
    current.heard[p.position] += now - p.since;
    p.since = p.audio.paused ? null : now;
  }

  function ready() {
    return current !== null && POSITIONS.every((pos) => current.heard[pos] >= minMs);
  }

  function render() {
    if (!current) return;
    players.forEach((p) => {
      const heard = current.heard[p.position];
      p.bar.value = Math.min(1, heard / minMs);
      const shown = Math.floor(Math.min(minMs, heard) / 10 ** (3 - digits)) / 10 ** digits;
      p.text.textContent = fmt(T.heard, { heard: seconds.format(shown), min: seconds.format(minMs / 1000) });
      const playing = !p.audio.paused;
      p.el.classList.toggle("playing", playing);
      p.el.classList.toggle("heard-enough", heard >= minMs);
      p.button.setAttribute("aria-pressed", String(playing));
      p.button.setAttribute("aria-label", fmt(playing ? T.pause : T.play, { position: p.position }));
      p.button.querySelector(".icon").textContent = playing ? "❚❚" : "▶";
    });
    const isReady = ready();
    answerButtons.forEach((b) => (b.disabled = busy || !isReady));
    const rest = POSITIONS.filter((pos) => current.heard[pos] < minMs);
    const hint = isReady
      ? T.unlocked
      : fmt(T.locked, { min: seconds.format(minMs / 1000), rest: rest.join(", ") });
    if ($("lock-hint").textContent !== hint) $("lock-hint").textContent = hint;
  }

  players.forEach((p) => {
    p.audio.addEventListener("play", () => {
      players.forEach((other) => other !== p && other.audio.pause());
      if (!current) return;
      current.plays[p.position] += 1;
      if (current.firstPlay === null) current.firstPlay = performance.now();
      p.since = performance.now();
      lastPlayed = p;
      render();
    });
    p.audio.addEventListener("timeupdate", () => {
      accumulate(p);
      if (document.activeElement !== p.seek) p.seek.value = p.audio.currentTime.toFixed(1);
      render();
    });
    ["pause", "ended"].forEach((name) =>
      p.audio.addEventListener(name, () => {
        accumulate(p);
        p.since = null;
        render();
      }),
    );
    p.audio.addEventListener("error", () => {
      if (!current || !p.audio.getAttribute("src")) return;
      const assignment = current.assignment;
      release();
      showLoadError(new LoadError(fmt(T.load_failed, { position: p.position }), assignment, p.position));
    });
    p.button.addEventListener("click", () => toggle(p));
    p.seek.addEventListener("input", () => {
      p.audio.currentTime = parseFloat(p.seek.value);
    });
    p.seek.addEventListener("change", () => current && (current.seeks[p.position] += 1));
    p.el.querySelector(".report-open").addEventListener("click", () => openReport(p));
  });

  function toggle(p) {
    if (!current) return;
    if (p.audio.paused) {
      p.audio.play().catch((e) => say(fmt(T.error, { detail: e.message })));
    } else {
      p.audio.pause();
    }
  }

  function pauseOrResume() {
    const playing = players.find((p) => !p.audio.paused);
    if (playing) playing.audio.pause();
    else if (lastPlayed) toggle(lastPlayed);
  }

  // --- answering ----------------------------------------------------------------------------

  async function answer(choice) {
    if (!current || busy || !ready()) return;
    busy = true;
    players.forEach((p) => {
      p.audio.pause();
      accumulate(p);
    });
    render();
    const byPosition = (counts) => POSITIONS.map((pos) => Math.round(counts[pos]));
    const body = {
      assignment: current.assignment.assignment,
      answer: choice,
      response_ms: Math.round(performance.now() - current.firstPlay),
      listen_ms: byPosition(current.heard),
      plays: byPosition(current.plays),
      seeks: byPosition(current.seeks),
      viewport: viewport(),
      language: document.documentElement.lang || "",
    };
    const practice = current.assignment.practice;
    say(T.sending);
    let response;
    try {
      response = await api("POST", cfg.judgmentUrl, body);
    } catch (e) {
      response = null;
    }
    if (!response || response.status >= 500 || response.status === 429) {
      outbox.add(body);
      say(T.offline);
      if (practice) practiceLeft -= 1;
      return advance();
    }
    if (response.status === 410) {
      say(T.expired);
      return advance();
    }
    if (!response.ok) {
      say(fmt(T.error, { detail: await detail(response) }));
      busy = false;
      render();
      return;
    }
    const data = await response.json();
    answered = data.answered;
    renderCounter();
    if (practice) {
      practiceLeft -= 1;
      const key = data.practice_answer === choice ? T.practice_right : T.practice_wrong;
      const odd = players.find((p) => p.position === data.practice_answer);
      if (odd) odd.el.classList.add("correct");
      let message = fmt(key, { position: data.practice_answer });
      if (practiceLeft === 0) message += " " + T.practice_done;
      say(message);
      show("next", true);
      $("next").focus();
      return;
    }
    say(data.others ? fmt(T.others, data.others) : fmt(T.others_pending, { n: cfg.finishedVotes }));
    if (data.created && answered > 0 && answered % batch === 0) {
      $("thanks-title").textContent = fmt(T.batch_thanks, { n: answered });
      release();
      show("players", false);
      show("answers", false);
      $("lock-hint").textContent = "";
      show("thanks", true);
      $("keep-going").focus();
      return;
    }
    advance();
  }

  function advance(focusFirst) {
    release();
    busy = false;
    showNext().then(() => {
      if (focusFirst && current) players[0].button.focus();
    });
  }

  answerButtons.forEach((b) => b.addEventListener("click", () => answer(b.dataset.answer)));
  $("next").addEventListener("click", () => {
    $("next").disabled = true;
    advance(true);
    $("next").disabled = false;
  });
  $("keep-going").addEventListener("click", () => {
    show("thanks", false);
    advance(true);
  });

  // --- reporting a problem ------------------------------------------------------------------

  const dialog = $("report-dialog");
  let reporting = null;

  function openReport(p) {
    reporting = p;
    $("report-title").textContent = fmt(T.report_title, { position: p.position });
    $("report-form").reset();
    $("report-send").disabled = false;
    dialog.showModal();
  }

  $("report-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => reporting && reporting.el.querySelector(".report-open").focus());
  $("report-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const send = $("report-send");
    if (send.disabled) return;
    send.disabled = true;
    let response;
    try {
      response = await api("POST", cfg.reportUrl, {
        snippet: parseInt(reporting.audio.dataset.snippet, 10),
        reason: form.reason.value,
        note: form.note.value,
      });
    } catch (err) {
      response = null;
    }
    send.disabled = false;
    if (response && response.ok) {
      dialog.close();
      say(T.report_sent);
    } else {
      say(fmt(T.error, { detail: response ? await detail(response) : T.offline }));
    }
  });

  // --- keyboard -----------------------------------------------------------------------------

  const DIGITS = { Digit1: 0, Digit2: 1, Digit3: 2, Numpad1: 0, Numpad2: 1, Numpad3: 2 };
  const LETTERS = { KeyA: 0, KeyB: 1, KeyC: 2 };

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey || dialog.open || typing(e.target)) return;
    const digit = DIGITS[e.code];
    const index = digit !== undefined ? digit : LETTERS[e.code];
    if (digit !== undefined && e.shiftKey) {
      e.preventDefault();
      answer(POSITIONS[digit]);
    } else if (index !== undefined && !e.shiftKey) {
      e.preventDefault();
      toggle(players[index]);
    } else if (e.code === "KeyN" && !e.shiftKey) {
      e.preventDefault();
      answer("none");
    } else if (e.code === "Space" && current) {
      e.preventDefault(); // Space pauses here; Enter presses the focused button
      pauseOrResume();
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.code === "Space" && current && !dialog.open && !typing(e.target)) e.preventDefault();
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
