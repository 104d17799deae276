// The OpenNLS console: wires the page to nls.js (protocol), audio.js and pop.js.

import { decodeToPcm16k, FRAME_SAMPLES, MicCapture, PcmPlayer, pcmToWav } from "./audio.js";
import { gatewayUrl, NlsError, synthesize, Transcriber } from "./nls.js";
import { createToken } from "./pop.js";

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DEV_TOKEN = "dev";
const DEV_APPKEY = "default";
const STOP_TIMEOUT_MS = 30000;

// ------------------------------------------------------------------ helpers

function fmtTime(ms) {
  const s = Math.max(0, ms) / 1000;
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
}

function fmtClock(ms) {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

function showError(box, error) {
  box.replaceChildren();
  if (error instanceof NlsError && error.status) {
    box.append(
      el("span", { className: "error-code", textContent: String(error.status) }),
      el("span", { className: "error-text", textContent: error.statusText || "TaskFailed" }),
    );
  } else {
    const text = error && error.message ? error.message : String(error);
    box.append(el("span", { className: "error-text", textContent: text }));
  }
  box.hidden = false;
}

function clearError(box) {
  box.hidden = true;
  box.replaceChildren();
}

function setState(section, node, state, text) {
  section.dataset.state = state;
  node.textContent = text;
}

function withTimeout(promise, ms, what) {
  return Promise.race([
    promise,
    sleep(ms).then(() => {
      throw new Error(`${what} did not arrive within ${ms / 1000} s.`);
    }),
  ]);
}

// ------------------------------------------------------------------ access

const access = {
  get token() {
    return $("token").value.trim();
  },
  get appkey() {
    return $("appkey").value.trim();
  },
  /** Throws when a field is empty (the gateway would refuse anyway). */
  require() {
    if (!this.token || !this.appkey) {
      const missing = !this.token ? $("token") : $("appkey");
      missing.focus();
      throw new Error("Enter a token and an AppKey first (or use the dev token).");
    }
    return { token: this.token, appkey: this.appkey };
  },
};

function initAccess() {
  const message = $("access-message");
  const saved = {
    token: sessionStorage.getItem("opennls.token"),
    appkey: sessionStorage.getItem("opennls.appkey"),
  };
  $("token").value = saved.token ?? DEV_TOKEN;
  $("appkey").value = saved.appkey ?? DEV_APPKEY;
  if (saved.token === null) {
    message.textContent =
      "Dev defaults filled in (token “dev”, AppKey “default”): a gateway on 127.0.0.1 " +
      "without credentials accepts any token.";
  }
  for (const id of ["token", "appkey"]) {
    $(id).addEventListener("input", () => sessionStorage.setItem(`opennls.${id}`, $(id).value));
  }
  $("show-token").addEventListener("click", (ev) => {
    const shown = $("token").type === "text";
    $("token").type = shown ? "password" : "text";
    ev.currentTarget.setAttribute("aria-pressed", String(!shown));
    ev.currentTarget.textContent = shown ? "Show" : "Hide";
  });

  const setToken = (token, appkey, expireTime) => {
    $("token").value = token;
    if (appkey !== undefined) $("appkey").value = appkey;
    sessionStorage.setItem("opennls.token", $("token").value);
    sessionStorage.setItem("opennls.appkey", $("appkey").value);
    const until = new Date(expireTime * 1000).toLocaleString();
    message.textContent = `Got a token from CreateToken; it expires ${until}.`;
  };

  $("use-dev").addEventListener("click", async () => {
    message.textContent = "Asking the gateway for a dev token…";
    try {
      // A dev-mode gateway issues a token for any AccessKey (the signature is still sent).
      const { token, expireTime } = await createToken("dev", "dev");
      setToken(token, DEV_APPKEY, expireTime);
    } catch (err) {
      message.textContent =
        `This gateway did not issue a dev token (${err.message}). It is not in dev ` +
        "mode: enter your token and AppKey, or create a token with your AccessKey.";
    }
  });

  $("createtoken-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = $("akid").value.trim();
    const secret = $("aksecret").value;
    if (!id || !secret) {
      message.textContent = "Enter the AccessKey ID and secret.";
      (id ? $("aksecret") : $("akid")).focus();
      return;
    }
    message.textContent = "Calling CreateToken…";
    try {
      const { token, expireTime } = await createToken(id, secret);
      setToken(token, undefined, expireTime);
    } catch (err) {
      message.textContent = `CreateToken failed: ${err.message}`;
    } finally {
      $("aksecret").value = "";
    }
  });
}

// ------------------------------------------------------------------ gateway status

async function watchGateway(onReady) {
  const pill = $("gateway-status");
  const text = pill.querySelector(".pill-text");
  for (;;) {
    let state;
    try {
      const r = await fetch("/healthz", { cache: "no-store" });
      state = r.ok ? "ready" : "loading";
    } catch {
      state = "down";
    }
    pill.dataset.state = state;
    text.textContent = {
      ready: "Gateway ready",
      loading: "Engines loading…",
      down: "Gateway unreachable",
    }[state];
    if (state === "ready") {
      onReady();
      return;
    }
    await sleep(2000);
  }
}

// ------------------------------------------------------------------ transcript view

/** Shows SentenceBegin / TranscriptionResultChanged / SentenceEnd in a list. */
class TranscriptView {
  constructor(list, partial, empty = null) {
    this.list = list;
    this.partial = partial;
    this.empty = empty;
    this.count = 0;
  }

  reset() {
    this.list.replaceChildren();
    this.partial.textContent = "";
    this.partial.hidden = true;
    this.count = 0;
    if (this.empty) this.empty.hidden = false;
  }

  begin() {
    this.partial.hidden = false;
    this.partial.textContent = "…";
    if (this.empty) this.empty.hidden = true;
  }

  changed(payload) {
    this.begin();
    this.partial.textContent = payload.result || "…";
  }

  end(payload) {
    this.partial.textContent = "";
    this.partial.hidden = true;
    if (this.empty) this.empty.hidden = true;
    if (!payload.result) return; // a sentence of noise: nothing to show
    this.count += 1;
    const begin = payload.begin_time ?? 0;
    const time = el("span", {
      className: "sentence-time",
      textContent: `${fmtTime(begin)} – ${fmtTime(payload.time ?? begin)}`,
    });
    const text = el("span", { className: "sentence-text", textContent: payload.result });
    const item = el("li", { className: "sentence" }, time, text);
    item.dataset.index = String(payload.index ?? this.count);
    this.list.append(item);
    item.scrollIntoView({ block: "nearest" });
  }
}

function transcriptionParams() {
  return {
    format: "pcm",
    sample_rate: 16000,
    enable_intermediate_result: $("opt-partial").checked,
    enable_punctuation_prediction: $("opt-punct").checked,
    enable_inverse_text_normalization: $("opt-itn").checked,
  };
}

// ------------------------------------------------------------------ live transcription

function initLive() {
  const section = $("live");
  const state = $("live-state");
  const errorBox = $("live-error");
  const startBtn = $("live-start");
  const stopBtn = $("live-stop");
  const view = new TranscriptView($("live-sentences"), $("live-partial"), $("live-empty"));
  view.reset();
  let session = null;

  const finish = async (error) => {
    if (!session) return;
    const s = session;
    session = null;
    clearInterval(s.clock);
    $("live-level").style.transform = "scaleX(0)";
    await s.mic.stop();
    s.transcriber?.abort();
    startBtn.disabled = false;
    stopBtn.disabled = true;
    if (error) {
      showError(errorBox, error);
      setState(section, state, "failed", "Stopped with an error.");
      startBtn.focus();
    } else {
      const n = view.count;
      setState(section, state, "done", `Done: ${n} sentence${n === 1 ? "" : "s"}.`);
    }
  };

  startBtn.addEventListener("click", async () => {
    if (session) return;
    clearError(errorBox);
    let creds;
    try {
      creds = access.require();
    } catch (err) {
      showError(errorBox, err);
      return;
    }
    startBtn.disabled = true;
    view.reset();
    const pending = []; // frames captured before TranscriptionStarted
    const s = { transcriber: null, mic: null, clock: null, started: false };
    session = s;
    s.mic = new MicCapture((pcm, peak) => {
      $("live-level").style.transform = `scaleX(${Math.min(1, peak * 1.6).toFixed(3)})`;
      if (s.started) s.transcriber.sendAudio(pcm);
      else pending.push(pcm);
    });
    try {
      setState(section, state, "connecting", "Opening the microphone…");
      await s.mic.start();
      setState(section, state, "connecting", "Connecting to /ws/v1…");
      s.transcriber = new Transcriber({
        ...creds,
        onSentenceBegin: () => view.begin(),
        onResultChanged: (p) => view.changed(p),
        onSentenceEnd: (p) => view.end(p),
      });
      await s.transcriber.start(transcriptionParams());
      s.started = true;
      for (const pcm of pending.splice(0)) s.transcriber.sendAudio(pcm);
      s.transcriber.done.catch((err) => finish(err));
    } catch (err) {
      await finish(err);
      return;
    }
    const t0 = performance.now();
    $("live-clock").textContent = "0:00";
    s.clock = setInterval(() => {
      $("live-clock").textContent = fmtClock(performance.now() - t0);
    }, 250);
    stopBtn.disabled = false;
    stopBtn.focus();
    const rate = s.mic.inputRate ? ` (${s.mic.inputRate / 1000} kHz → 16 kHz)` : "";
    setState(section, state, "listening", `Listening${rate}. Speak now.`);
  });

  stopBtn.addEventListener("click", async () => {
    const s = session;
    if (!s || !s.started) return;
    stopBtn.disabled = true;
    setState(section, state, "stopping", "Finishing the last sentence…");
    try {
      await s.mic.stop(); // posts the last partial frame first
      await withTimeout(s.transcriber.stop(), STOP_TIMEOUT_MS, "TranscriptionCompleted");
      await finish(null);
    } catch (err) {
      await finish(err);
    }
  });
}

// ------------------------------------------------------------------ file transcription

function initFile() {
  const section = $("file");
  const state = $("file-state");
  const errorBox = $("file-error");
  const zone = $("dropzone");
  const input = $("file-input");
  const partial = el("p", { className: "partial", hidden: true });
  partial.setAttribute("aria-live", "polite");
  $("file-sentences").after(partial);
  const view = new TranscriptView($("file-sentences"), partial);
  let current = null;

  const run = async (file) => {
    if (current) current.cancelled = true;
    current?.transcriber?.abort();
    const job = { cancelled: false, transcriber: null };
    current = job;
    clearError(errorBox);
    view.reset();
    $("file-name").textContent = file.name;
    $("file-bar").value = 0;
    $("file-progress").hidden = false;
    try {
      const creds = access.require();
      setState(section, state, "decoding", `Decoding ${file.name}…`);
      let pcm;
      try {
        pcm = await decodeToPcm16k(await file.arrayBuffer());
      } catch (err) {
        throw new Error(`The browser could not decode ${file.name} (${err.message || err}).`);
      }
      if (job.cancelled) return;
      const seconds = pcm.length / 16000;
      job.transcriber = new Transcriber({
        ...creds,
        onSentenceBegin: () => view.begin(),
        onResultChanged: (p) => view.changed(p),
        onSentenceEnd: (p) => view.end(p),
      });
      setState(section, state, "connecting", "Connecting to /ws/v1…");
      await job.transcriber.start(transcriptionParams());
      setState(section, state, "sending", `Sending ${seconds.toFixed(1)} s of audio…`);
      let failed = null;
      job.transcriber.done.catch((err) => {
        failed = err;
      });
      // About 10× real time in 100 ms frames, with back-pressure on the socket buffer.
      for (let at = 0; at < pcm.length && !job.cancelled && !failed; at += FRAME_SAMPLES) {
        const frame = pcm.slice(at, at + FRAME_SAMPLES);
        job.transcriber.sendAudio(frame.buffer);
        $("file-bar").value = Math.min(1, (at + FRAME_SAMPLES) / pcm.length);
        await sleep(10);
        while (job.transcriber.bufferedAmount > 256 * 1024) await sleep(20);
      }
      if (job.cancelled) return;
      if (failed) throw failed;
      setState(section, state, "stopping", "Waiting for the last sentences…");
      await withTimeout(job.transcriber.stop(), STOP_TIMEOUT_MS, "TranscriptionCompleted");
      const n = view.count;
      setState(section, state, "done", `Done: ${n} sentence${n === 1 ? "" : "s"} from ${file.name}.`);
    } catch (err) {
      if (job.cancelled) return;
      job.transcriber?.abort();
      showError(errorBox, err);
      setState(section, state, "failed", "Stopped with an error.");
    } finally {
      if (current === job) {
        current = null;
        $("file-progress").hidden = true;
      }
    }
  };

  input.addEventListener("change", () => {
    if (input.files && input.files[0]) run(input.files[0]);
    input.value = "";
  });
  zone.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("dragging");
    const file = ev.dataTransfer.files && ev.dataTransfer.files[0];
    if (file) run(file);
  });
  $("file-cancel").addEventListener("click", () => {
    if (!current) return;
    current.cancelled = true;
    current.transcriber?.abort();
    current = null;
    $("file-progress").hidden = true;
    setState(section, state, "idle", "Cancelled.");
  });
}

// ------------------------------------------------------------------ synthesis

/** MetaInfo subtitles (§6.2): cumulative per sentence; highlighted with playback. */
class Subtitles {
  constructor(box) {
    this.box = box;
    this.entries = new Map();
    this.text = "";
    this.spans = [];
  }

  reset(text) {
    this.entries.clear();
    this.text = text;
    this.spans = [];
    this.box.replaceChildren();
    this.box.hidden = true;
  }

  add(payload) {
    for (const s of payload.subtitles || []) {
      if (s.sentence) continue;
      this.entries.set(`${s.begin_index}:${s.end_index}:${s.begin_time}`, s);
    }
    this.render();
  }

  render() {
    const words = [...this.entries.values()].sort(
      (a, b) => a.begin_index - b.begin_index || a.begin_time - b.begin_time,
    );
    if (!words.length) return;
    const src = this.text;
    const fromText = words.every(
      (w, i) =>
        w.begin_index >= (i ? words[i - 1].end_index : 0) &&
        w.end_index <= src.length &&
        src.slice(w.begin_index, w.end_index) === w.text,
    );
    const nodes = [];
    this.spans = [];
    const wordSpan = (w, text) => {
      const span = el("span", { className: "word", textContent: text });
      span.dataset.begin = String(w.begin_time);
      span.dataset.end = String(w.end_time);
      this.spans.push(span);
      return span;
    };
    if (fromText) {
      let at = 0;
      for (const w of words) {
        if (w.begin_index > at) nodes.push(src.slice(at, w.begin_index));
        nodes.push(wordSpan(w, src.slice(w.begin_index, w.end_index)));
        at = w.end_index;
      }
      if (at < src.length) nodes.push(src.slice(at));
    } else {
      words.forEach((w, i) => {
        if (i && /\w$/.test(words[i - 1].text) && /^\w/.test(w.text)) nodes.push(" ");
        nodes.push(wordSpan(w, w.text));
      });
    }
    this.box.replaceChildren(...nodes);
    this.box.hidden = false;
  }

  highlight(ms) {
    for (const span of this.spans) {
      const begin = Number(span.dataset.begin);
      const end = Number(span.dataset.end);
      span.classList.toggle("spoken", ms >= end);
      span.classList.toggle("current", ms >= begin && ms < end);
    }
  }
}

function initSynthesis() {
  const section = $("tts");
  const state = $("tts-state");
  const errorBox = $("tts-error");
  const text = $("tts-text");
  const startBtn = $("tts-start");
  const stopBtn = $("tts-stop");
  const download = $("tts-download");
  const subtitles = new Subtitles($("tts-subtitles"));
  let job = null;

  const count = () => {
    $("tts-count").textContent = `${[...text.value].length} / 300`;
  };
  text.addEventListener("input", count);
  count();
  for (const id of ["tts-speed", "tts-volume", "tts-pitch"]) {
    const out = $(`${id}-out`);
    const update = () => {
      out.value = $(id).value;
    };
    $(id).addEventListener("input", update);
    update();
  }

  const setDownload = (blob) => {
    if (download.href) URL.revokeObjectURL(download.href);
    if (blob) {
      download.href = URL.createObjectURL(blob);
      download.removeAttribute("aria-disabled");
    } else {
      download.removeAttribute("href");
      download.setAttribute("aria-disabled", "true");
    }
  };

  const stop = async () => {
    const j = job;
    if (!j) return;
    job = null;
    j.stopped = true;
    j.task?.close();
    cancelAnimationFrame(j.raf);
    await j.player.close();
    startBtn.disabled = false;
    stopBtn.disabled = true;
  };

  $("tts-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await stop();
    clearError(errorBox);
    setDownload(null);
    let creds;
    try {
      creds = access.require();
    } catch (err) {
      showError(errorBox, err);
      return;
    }
    const payload = {
      text: text.value.trim(),
      voice: $("tts-voice").value,
      format: "pcm",
      sample_rate: Number($("tts-rate").value),
      volume: Number($("tts-volume").value),
      speech_rate: Number($("tts-speed").value),
      pitch_rate: Number($("tts-pitch").value),
      enable_subtitle: $("tts-subtitle").checked,
    };
    if (!payload.text) {
      showError(errorBox, new Error("Enter some text to synthesize."));
      text.focus();
      return;
    }
    section.dataset.playedSamples = "0";
    state.dataset.playedSamples = "0";
    // The AudioContext is created inside the click so autoplay rules let it sound.
    const player = new PcmPlayer(payload.sample_rate, {
      onPlayed: (n) => {
        state.dataset.playedSamples = String(n);
      },
    });
    const chunks = [];
    const j = { player, task: null, raf: 0, stopped: false };
    job = j;
    subtitles.reset(payload.text);
    startBtn.disabled = true;
    stopBtn.disabled = false;
    setState(section, state, "connecting", "Connecting to /ws/v1…");
    const tick = () => {
      subtitles.highlight(player.positionMs());
      j.raf = requestAnimationFrame(tick);
    };
    j.raf = requestAnimationFrame(tick);
    let firstAudio = true;
    const t0 = performance.now();
    const { task, done } = synthesize({
      ...creds,
      payload,
      onAudio: (buf) => {
        if (j.stopped) return;
        chunks.push(buf);
        player.push(buf);
        if (firstAudio) {
          firstAudio = false;
          const ms = Math.round(performance.now() - t0);
          setState(section, state, "playing", `Playing (first audio after ${ms} ms)…`);
        }
      },
      onMetaInfo: (p) => subtitles.add(p),
    });
    j.task = task;
    try {
      await done;
      const bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
      const seconds = bytes / 2 / payload.sample_rate;
      setDownload(pcmToWav(chunks, payload.sample_rate));
      if (j.stopped) return;
      setState(section, state, "playing", `Received ${seconds.toFixed(1)} s of audio; playing…`);
      await player.drained();
      if (j.stopped) return;
      subtitles.highlight(Infinity);
      setState(section, state, "done", `Played ${seconds.toFixed(1)} s of audio.`);
      await stop();
    } catch (err) {
      if (j.stopped) return;
      await stop();
      showError(errorBox, err);
      setState(section, state, "failed", "Synthesis failed.");
    }
  });

  stopBtn.addEventListener("click", async () => {
    await stop();
    setState(section, state, "idle", "Stopped.");
    startBtn.focus();
  });
}

async function loadVoices() {
  const select = $("tts-voice");
  try {
    const r = await fetch("/voices", { cache: "no-store" });
    if (!r.ok) throw new Error(`GET /voices answered ${r.status}`);
    const voices = await r.json();
    const groups = new Map();
    for (const v of voices) {
      if (!groups.has(v.language)) groups.set(v.language, []);
      groups.get(v.language).push(v);
    }
    const names = { zh: "Chinese", en: "English" };
    select.replaceChildren(
      ...[...groups].map(([lang, list]) => {
        const group = el("optgroup", { label: names[lang] || lang });
        for (const v of list) {
          group.append(el("option", { value: v.name, textContent: `${v.name} · ${v.gender}` }));
        }
        return group;
      }),
    );
    const preferred = voices.find((v) => v.name === "xiaoyun") || voices[0];
    if (preferred) select.value = preferred.name;
  } catch (err) {
    select.replaceChildren(el("option", { value: "xiaoyun", textContent: "xiaoyun" }));
    showError($("tts-error"), new Error(`Could not load the voice list: ${err.message}`));
  }
}

// ------------------------------------------------------------------ start

initAccess();
initLive();
initFile();
initSynthesis();
$("ws-url").textContent = gatewayUrl("…").replace("%E2%80%A6", "…");
watchGateway(loadVoices);
document.documentElement.dataset.ready = "true";
