// livestems' page: upload, the job list (server-sent events), and a WebAudio player for the stems.
// Plain JavaScript, no build step. The player's state is on window.livestemsPlayer for tests.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "livestems-token";
const RAMP_S = 0.01; // gains move with a 10 ms time constant, so mute and solo never click

// ------------------------------------------------------------------------------ the API

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function authHeaders() { return token() ? { Authorization: "Bearer " + token() } : {}; }
function withToken(url) {
  // EventSource and download links cannot send headers: the server takes ?token= for GETs.
  return token() ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token()) : url;
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  if (response.status === 401) askToken();
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return response;
}

function askToken() {
  $("token-box").hidden = false;
  $("token").focus();
}

$("token-save").addEventListener("click", () => {
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token-box").hidden = true;
  showError("");
  start();
});

// ------------------------------------------------------------------------------ uploads

function upload(file) {
  showError("");
  const form = new FormData();
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  const bar = $("upload");
  bar.hidden = false;
  bar.value = 0;
  xhr.upload.onprogress = (event) => { if (event.lengthComputable) bar.value = event.loaded / event.total; };
  xhr.onload = () => {
    bar.hidden = true;
    if (xhr.status === 401) askToken();
    if (xhr.status >= 400) {
      let detail = xhr.statusText;
      try { detail = JSON.parse(xhr.responseText).detail || detail; } catch (e) { /* not JSON */ }
      showError(detail);
    } else {
      refreshJobs();
    }
  };
  xhr.onerror = () => { bar.hidden = true; showError("The upload failed: the server cannot be reached."); };
  xhr.open("POST", "/api/separations");
  for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
  xhr.send(form);
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  for (const file of event.dataTransfer.files) upload(file);
});
$("file").addEventListener("change", (event) => {
  for (const file of event.target.files) upload(file);
  event.target.value = "";
});

// ------------------------------------------------------------------------------ the job list

let events = null;

function renderJobs(jobs) {
  const list = $("job-list");
  list.replaceChildren();
  for (const job of jobs) {
    const item = document.createElement("li");
    item.className = job.state;
    item.dataset.id = job.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = job.name;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = job.state === "failed" ? "failed: " + job.error
      : job.state === "running" ? Math.round(job.progress * 100) + " %"
      : job.state === "done" ? `done (${job.duration_s.toFixed(1)} s)` : job.state;
    item.append(name, state);
    if (job.state === "running" || job.state === "queued") {
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = job.progress;
      item.append(bar);
    }
    const actions = document.createElement("div");
    actions.className = "actions";
    if (job.state === "done") {
      const open = document.createElement("button");
      open.textContent = "Play";
      open.className = "open";
      open.addEventListener("click", () => player.load(job));
      const zip = document.createElement("a");
      zip.className = "button";
      zip.textContent = "Download stems";
      zip.href = withToken(`/api/separations/${job.id}/stems.zip`);
      actions.append(open, zip);
    }
    const remove = document.createElement("button");
    remove.textContent = "Delete";
    remove.addEventListener("click", async () => {
      try { await api(`/api/separations/${job.id}`, { method: "DELETE" }); } catch (e) { showError(e.message); }
      refreshJobs();
    });
    actions.append(remove);
    item.append(actions);
    list.append(item);
  }
}

async function refreshJobs() {
  try {
    renderJobs((await (await api("/api/separations")).json()).separations);
  } catch (e) { showError(e.message); }
}

function listen() {
  if (events) events.close();
  events = new EventSource(withToken("/api/events"));
  events.onmessage = (event) => renderJobs(JSON.parse(event.data).separations);
}

async function start() {
  try {
    const limits = await (await api("/api/limits")).json();
    $("limits").textContent = `up to ${limits.max_upload_mb} MB and ${limits.max_seconds / 60} min; model ${limits.model}`;
  } catch (e) { showError(e.message); return; }
  await refreshJobs();
  listen();
}

// ------------------------------------------------------------------------------ the player

const player = {
  context: null,   // one AudioContext for every stem
  stems: [],       // {name, buffer, gain (the fader), muted, soloed, node (GainNode), source}
  job: null,
  playing: false,
  offset: 0,       // song seconds at startedAt
  startedAt: 0,    // context time the sources started
  duration: 0,
  loopA: 0,
  loopB: 0,
  looping: false,

  async load(job) {
    this.stop();
    showError("");
    if (!this.context) this.context = new AudioContext();
    this.job = job;
    $("player").hidden = false;
    $("song").textContent = job.name + " (loading)";
    try {
      const buffers = await Promise.all(job.stems.map(async (name) => {
        const data = await (await api(`/api/separations/${job.id}/stems/${name}`)).arrayBuffer();
        return this.context.decodeAudioData(data);
      }));
      for (const stem of this.stems) stem.node.disconnect();
      this.stems = job.stems.map((name, index) => {
        const node = this.context.createGain();
        node.connect(this.context.destination);
        return { name, buffer: buffers[index], gain: 1, muted: false, soloed: false, node, source: null };
      });
    } catch (e) { showError(e.message); return; }
    this.duration = Math.max(...this.stems.map((stem) => stem.buffer.duration));
    this.offset = 0;
    this.loopA = 0;
    this.loopB = this.duration;
    this.looping = false;
    $("song").textContent = job.name;
    this.buildStrips();
    this.drawOverview();
    this.applyGains(true);
    this.update();
  },

  position() {
    if (!this.playing) return this.offset;
    let position = this.offset + this.context.currentTime - this.startedAt;
    if (this.looping && this.loopB > this.loopA && position >= this.loopB) {
      position = this.loopA + ((position - this.loopA) % (this.loopB - this.loopA));
    }
    return Math.min(position, this.duration);
  },

  play() {
    if (!this.stems.length || this.playing) return;
    this.context.resume();
    if (this.offset >= this.duration) this.offset = 0;
    // One start time for every source, a little ahead, so all stems begin on the same sample.
    const when = this.context.currentTime + 0.05;
    for (const stem of this.stems) {
      const source = this.context.createBufferSource();
      source.buffer = stem.buffer;
      if (this.looping && this.loopB > this.loopA) {
        source.loop = true;
        source.loopStart = this.loopA;
        source.loopEnd = this.loopB;
      }
      source.connect(stem.node);
      source.start(when, this.offset);
      stem.source = source;
    }
    this.stems[0].source.onended = () => {
      if (this.playing && this.stems[0].source && !this.stems[0].source.loop) {
        this.playing = false;
        this.offset = this.duration;
        this.update();
      }
    };
    this.startedAt = when;
    this.playing = true;
    this.update();
  },

  stop() {
    if (!this.playing) return;
    this.offset = this.position();
    this.playing = false;
    for (const stem of this.stems) {
      if (stem.source) { stem.source.onended = null; stem.source.stop(); stem.source = null; }
    }
    this.update();
  },

  toggle() { this.playing ? this.stop() : this.play(); },

  seek(seconds) {
    const wasPlaying = this.playing;
    this.stop();
    this.offset = Math.min(Math.max(seconds, 0), this.duration);
    if (wasPlaying) this.play();
    this.update();
  },

  setLoop(on) {
    // The sources take loop points at start: restart them where the playhead is.
    const wasPlaying = this.playing;
    this.stop();
    this.looping = on && this.loopB > this.loopA;
    if (this.looping && (this.offset < this.loopA || this.offset >= this.loopB)) this.offset = this.loopA;
    if (wasPlaying) this.play();
    this.update();
  },

  effective(stem) {
    const anySolo = this.stems.some((s) => s.soloed);
    if (stem.muted || (anySolo && !stem.soloed)) return 0;
    return stem.gain;
  },

  applyGains(now = false) {
    const t = this.context.currentTime;
    for (const stem of this.stems) {
      const target = this.effective(stem);
      stem.node.gain.cancelScheduledValues(t);
      if (now) stem.node.gain.setValueAtTime(target, t);
      else stem.node.gain.setTargetAtTime(target, t, RAMP_S);
    }
    this.updateStrips();
  },

  setGain(index, gain) { this.stems[index].gain = gain; this.applyGains(); },
  toggleMute(index) { const s = this.stems[index]; if (s) { s.muted = !s.muted; this.applyGains(); } },
  toggleSolo(index) { const s = this.stems[index]; if (s) { s.soloed = !s.soloed; this.applyGains(); } },

  buildStrips() {
    const strips = $("strips");
    strips.replaceChildren();
    this.stems.forEach((stem, index) => {
      const strip = document.createElement("div");
      strip.className = "strip";
      strip.dataset.stem = stem.name;
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = `${index + 1} ${stem.name}`;
      const fader = document.createElement("input");
      fader.type = "range";
      fader.min = 0; fader.max = 1.5; fader.step = 0.01; fader.value = stem.gain;
      fader.className = "fader";
      fader.setAttribute("aria-label", stem.name + " gain");
      fader.addEventListener("input", () => this.setGain(index, Number(fader.value)));
      const buttons = document.createElement("div");
      buttons.className = "buttons";
      const mute = document.createElement("button");
      mute.textContent = "M"; mute.className = "mute"; mute.title = `Mute ${stem.name} (${index + 1})`;
      mute.addEventListener("click", () => this.toggleMute(index));
      const solo = document.createElement("button");
      solo.textContent = "S"; solo.className = "solo"; solo.title = `Solo ${stem.name} (Shift+${index + 1})`;
      solo.addEventListener("click", () => this.toggleSolo(index));
      buttons.append(mute, solo);
      strip.append(label, fader, buttons);
      strips.append(strip);
    });
  },

  updateStrips() {
    for (const strip of $("strips").children) {
      const stem = this.stems.find((s) => s.name === strip.dataset.stem);
      if (!stem) continue;
      strip.querySelector(".mute").classList.toggle("on", stem.muted);
      strip.querySelector(".solo").classList.toggle("on", stem.soloed);
    }
  },

  drawOverview() {
    const canvas = $("overview");
    const width = (canvas.width = Math.max(1, Math.floor(canvas.clientWidth * devicePixelRatio)));
    const height = (canvas.height = Math.floor(80 * devicePixelRatio));
    const peaks = new Float32Array(width);
    // The mix's overview: the peak of the stems' sum over each pixel's stretch of the song.
    for (const stem of this.stems) {
      const data = stem.buffer.getChannelData(0);
      const per = data.length / width;
      for (let x = 0; x < width; x++) {
        let peak = 0;
        const end = Math.min(data.length, Math.floor((x + 1) * per));
        for (let i = Math.floor(x * per); i < end; i++) peak = Math.max(peak, Math.abs(data[i]));
        peaks[x] += peak;
      }
    }
    const top = Math.max(...peaks, 1e-6);
    const g = canvas.getContext("2d");
    this.overview = { width, height, draw: () => {
      g.clearRect(0, 0, width, height);
      if (this.looping) {
        g.fillStyle = "rgba(255, 202, 40, 0.18)";
        g.fillRect((this.loopA / this.duration) * width, 0, ((this.loopB - this.loopA) / this.duration) * width, height);
      }
      g.fillStyle = "#4fc3f7";
      for (let x = 0; x < width; x++) {
        const h = (peaks[x] / top) * (height - 4);
        g.fillRect(x, (height - h) / 2, 1, Math.max(1, h));
      }
      g.fillStyle = "#fff";
      g.fillRect((this.position() / this.duration) * width - 1, 0, 2, height);
    } };
    this.overview.draw();
  },

  update() {
    const fmt = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
    $("time").textContent = `${fmt(this.position())} / ${fmt(this.duration)}`;
    $("play").textContent = this.playing ? "Pause" : "Play";
    $("loop").classList.toggle("on", this.looping);
    if (this.overview) this.overview.draw();
  },
};

$("play").addEventListener("click", () => player.toggle());
$("set-a").addEventListener("click", () => { player.loopA = player.position(); if (player.loopB <= player.loopA) player.loopB = player.duration; player.setLoop(player.looping); });
$("set-b").addEventListener("click", () => { player.loopB = player.position(); if (player.loopB <= player.loopA) player.loopA = 0; player.setLoop(player.looping); });
$("loop").addEventListener("click", () => player.setLoop(!player.looping));
$("overview").addEventListener("pointerdown", (event) => {
  const box = event.target.getBoundingClientRect();
  player.seek(((event.clientX - box.left) / box.width) * player.duration);
});

// The window's shortcuts: 1-4 mute, Shift+1-4 solo, space play/pause, L loop, arrows 5 s.
document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" && event.target.type !== "range") return;
  if (!player.stems.length) return;
  const digit = /^Digit([1-9])$/.exec(event.code);
  if (digit) {
    const index = Number(digit[1]) - 1;
    event.shiftKey ? player.toggleSolo(index) : player.toggleMute(index);
  } else if (event.code === "Space") {
    player.toggle();
  } else if (event.code === "KeyL") {
    player.setLoop(!player.looping);
  } else if (event.code === "ArrowLeft") {
    player.seek(player.position() - 5);
  } else if (event.code === "ArrowRight") {
    player.seek(player.position() + 5);
  } else {
    return;
  }
  event.preventDefault();
});

setInterval(() => { if (player.playing) player.update(); }, 100);
window.addEventListener("resize", () => { if (player.stems.length) player.drawOverview(); });

// For tests and automation: the player's state, read-only, as plain values.
window.livestemsPlayer = {
  get playing() { return player.playing; },
  get position() { return player.stems.length ? player.position() : 0; },
  get duration() { return player.duration; },
  get job() { return player.job ? player.job.id : null; },
  get loop() { return { on: player.looping, a: player.loopA, b: player.loopB }; },
  get contextState() { return player.context ? player.context.state : "none"; },
  get stems() {
    return player.stems.map((stem) => ({
      name: stem.name, gain: stem.gain, muted: stem.muted, soloed: stem.soloed,
      effectiveGain: stem.node.gain.value, playing: stem.source !== null,
    }));
  },
};

start();
