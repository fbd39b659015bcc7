// The similar-tracks page: query /api/v1/similar/ by snippet (GET) or by an uploaded clip
// (POST, multipart), list the nearest tracks with players; the embedding map's points play
// their track when chosen, and PCA/t-SNE move them.
(function () {
  "use strict";
  const root = document.getElementById("similar");
  if (!root) return;

  const tracks = JSON.parse(document.getElementById("similar-tracks").textContent);
  const status = document.getElementById("similar-status");
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]");
  const kInput = document.getElementById("k-input");
  const trackSelect = document.getElementById("track-select");
  const snippetSelect = document.getElementById("snippet-select");
  const filter = document.getElementById("track-filter");
  const maxBytes = parseFloat(root.dataset.maxMb) * 1024 * 1024;
  let busy = false;

  function say(message, kind) {
    status.textContent = message;
    status.className = "similar-status" + (kind ? " " + kind : "");
  }

  function fillSnippets() {
    if (!trackSelect || !snippetSelect) return;
    const track = tracks.find((t) => String(t.id) === trackSelect.value);
    snippetSelect.replaceChildren();
    (track ? track.snippets : []).forEach(([id, start]) => {
      snippetSelect.append(new Option(`from ${start} s`, id));
    });
  }

  function applyFilter() {
    const needle = filter.value.trim().toLowerCase();
    let first = null;
    for (const option of trackSelect.options) {
      const shown = !needle || option.text.toLowerCase().includes(needle);
      option.hidden = !shown;
      if (shown && first === null) first = option;
    }
    if (first && trackSelect.selectedOptions[0]?.hidden) {
      trackSelect.value = first.value;
      fillSnippets();
    }
  }

  function cell(row, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    row.append(td);
    return td;
  }

  function show(body) {
    const tbody = document.getElementById("results-body");
    tbody.replaceChildren();
    body.results.forEach((r) => {
      const tr = document.createElement("tr");
      tr.className = "result";
      tr.dataset.track = r.track.id;
      cell(tr, String(r.rank));
      const link = document.createElement("a");
      link.href = `/tracks/${r.track.id}/next/`;
      link.textContent = r.track.title;
      const about = cell(tr, link);
      const credit = [...new Set([r.track.attribution.slice(0, 120), r.track.license])].filter(Boolean);
      if (credit.length) {
        const small = document.createElement("span");
        small.className = "help credit";
        small.textContent = credit.join(" · ");
        about.append(small);
      }
      cell(tr, r.score.toFixed(3));
      const player = document.createElement("audio");
      player.controls = true;
      player.preload = "none";
      player.src = r.snippet.audio_url;
      player.setAttribute("aria-label", `${r.track.title}, from ${Math.round(r.snippet.start_s)} s`);
      player.addEventListener("play", () => pauseOthers(player));
      cell(tr, player);
      tbody.append(tr);
    });
    const q = body.query;
    document.getElementById("results-title").textContent =
      q.kind === "upload" ? "Nearest tracks to your clip" : "Nearest tracks to the snippet";
    document.getElementById("results-space").textContent =
      `Answered in ${body.space} (${body.score_kind === "cosine" ? "cosine similarity" : "minus z-scored distance"}; ` +
      `${q.windows} window${q.windows === 1 ? "" : "s"})` + (body.fallback ? `: mel-stats because ${body.fallback}.` : ".");
    document.getElementById("results").hidden = false;
    say(body.results.length ? `${body.results.length} tracks found.` : "No other track to compare with yet.");
  }

  function pauseOthers(playing) {
    document.querySelectorAll("audio").forEach((a) => a !== playing && a.pause());
  }

  async function ask(request, waiting) {
    if (busy) return;
    busy = true;
    root.setAttribute("aria-busy", "true");
    say(waiting, "working");
    try {
      const response = await request();
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
      show(body);
    } catch (err) {
      say(`Could not search: ${err.message}`, "error");
    } finally {
      busy = false;
      root.removeAttribute("aria-busy");
    }
  }

  function bySnippet(snippet) {
    const query = new URLSearchParams({ snippet: snippet, k: kInput.value || "10" });
    return ask(
      () => fetch(`${root.dataset.apiUrl}?${query}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      }),
      "Searching…",
    );
  }

  const snippetForm = document.getElementById("by-snippet");
  if (snippetForm) {
    trackSelect.addEventListener("change", fillSnippets);
    filter.addEventListener("input", applyFilter);
    fillSnippets();
    snippetForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (snippetSelect.value) bySnippet(snippetSelect.value);
    });
    document.getElementById("random-snippet").addEventListener("click", () => {
      if (!tracks.length) return;
      const track = tracks[Math.floor(Math.random() * tracks.length)];
      filter.value = "";
      applyFilter();
      trackSelect.value = String(track.id);
      fillSnippets();
      const pick = track.snippets[Math.floor(Math.random() * track.snippets.length)];
      snippetSelect.value = String(pick[0]);
      bySnippet(pick[0]);
    });
  }

  const uploadForm = document.getElementById("by-upload");
  if (uploadForm) {
    uploadForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const file = document.getElementById("audio-file").files[0];
      if (!file) return;
      if (file.size > maxBytes) {
        say(`The file is too big: at most ${root.dataset.maxMb} MB.`, "error");
        return;
      }
      const form = new FormData();
      form.append("audio", file);
      form.append("k", kInput.value || "10");
      ask(
        () => fetch(root.dataset.apiUrl, {
          method: "POST",
          body: form,
          headers: { Accept: "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
          credentials: "same-origin",
        }),
        "Analysing the clip: decoding, cutting into windows and comparing…",
      );
    });
  }

  // The embedding map -------------------------------------------------------------------------
  const svg = document.getElementById("map-svg");
  if (!svg) return;
  const caption = document.getElementById("map-caption");
  const mapAudio = document.getElementById("map-audio");
  const mapSimilar = document.getElementById("map-similar");
  let chosen = null;

  function choose(point) {
    svg.querySelectorAll(".map-point.chosen").forEach((p) => p.classList.remove("chosen"));
    point.classList.add("chosen");
    chosen = point;
    caption.textContent = `${point.dataset.title} (${point.dataset.group})`;
    mapAudio.src = point.dataset.url;
    mapAudio.hidden = false;
    mapSimilar.hidden = false;
    pauseOthers(mapAudio);
    mapAudio.play().catch(() => {});
  }

  svg.querySelectorAll(".map-point").forEach((point) => {
    point.addEventListener("click", () => choose(point));
    point.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose(point);
      }
    });
    point.addEventListener("mouseenter", () => {
      if (!chosen) caption.textContent = `${point.dataset.title} (${point.dataset.group})`;
    });
  });
  mapAudio.addEventListener("play", () => pauseOthers(mapAudio));
  mapSimilar.addEventListener("click", () => chosen && bySnippet(chosen.dataset.snippet));

  document.querySelectorAll("input[name=layout]").forEach((radio) => {
    radio.addEventListener("change", () => {
      svg.querySelectorAll(".map-point").forEach((point) => {
        const [x, y] = point.dataset[radio.value].split(",");
        point.setAttribute("cx", x);
        point.setAttribute("cy", y);
      });
    });
  });
})();
