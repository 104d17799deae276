// A minimal NLS WebSocket client for browsers (protocol.md §2, §3, §5, §6).
//
// This module is the part of the console meant to be copied: it speaks the real NLS wire
// protocol, so the same code works against this gateway and the cloud gateway
// (wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1?token=...). Browsers cannot set the
// X-NLS-Token header on a WebSocket, so the token travels in the `?token=` query (§2.1).
//
//   const t = new Transcriber({ token, appkey, onSentenceEnd: (p) => console.log(p.result) });
//   await t.start({ format: "pcm", sample_rate: 16000, enable_intermediate_result: true });
//   t.sendAudio(int16Frame.buffer);      // 16 kHz 16-bit mono PCM, ~100 ms per frame
//   await t.stop();                       // resolves on TranscriptionCompleted
//
//   await synthesize({ token, appkey, payload: { text: "你好", voice: "xiaoyun",
//                      format: "pcm", sample_rate: 24000 }, onAudio: (buf) => play(buf) });

const SDK = { name: "opennls-web-console", version: "1.0", language: "javascript" };

/** A new 32-character lowercase hex id (message_id / task_id, §3.1). */
export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The gateway's WebSocket URL on the origin that served this page, token in the query. */
export function gatewayUrl(token, base = location) {
  const scheme = base.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${base.host}/ws/v1?token=${encodeURIComponent(token)}`;
}

/** A task that ended with TaskFailed (status = the 8-digit NLS code) or a lost connection. */
export class NlsError extends Error {
  constructor(status, statusText) {
    super(statusText);
    this.name = "NlsError";
    this.status = status; // number, or null when the connection failed without an event
    this.statusText = statusText;
  }
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a rejection nobody awaits must not become an unhandled error
  return { promise, resolve, reject };
}

/**
 * One WebSocket carrying one NLS task: builds the envelope (§3.1), parses events (§3.2)
 * and turns TaskFailed and unexpected closes into NlsError.
 */
export class NlsTask {
  constructor({ token, appkey, namespace, url = null, onEvent = null, onAudio = null }) {
    this.url = url || gatewayUrl(token);
    this.appkey = appkey;
    this.namespace = namespace;
    this.taskId = newId();
    this.onEvent = onEvent;
    this.onAudio = onAudio;
    this.ws = null;
    this.finished = false;
    this.done = deferred(); // settles with the Completed event or an NlsError
    this.waiters = new Map(); // event name -> deferred
  }

  /** Open the socket (resolves when the handshake succeeded). */
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        resolve();
      };
      ws.onmessage = (ev) => this.#receive(ev.data);
      ws.onclose = (ev) => {
        if (!opened) {
          // Browsers hide the handshake answer; a 403 (bad or expired token, §2.2), a 503
          // (engines loading, too many connections) and an unreachable host look the same.
          reject(
            new NlsError(
              null,
              "Could not open the WebSocket: the gateway refused the handshake " +
                "(wrong or expired token → 403) or is unreachable.",
            ),
          );
          return;
        }
        if (!this.finished) {
          const why = ev.reason ? `: ${ev.reason}` : "";
          this.#fail(new NlsError(null, `Connection closed (code ${ev.code})${why}.`));
        }
      };
    });
  }

  /** Send a command of this task's namespace (§3.1). */
  send(name, payload) {
    const message = {
      header: {
        message_id: newId(),
        task_id: this.taskId,
        namespace: this.namespace,
        name,
        appkey: this.appkey,
      },
      context: { sdk: SDK },
    };
    if (payload !== undefined) message.payload = payload;
    this.ws.send(JSON.stringify(message));
  }

  /** Send one binary audio frame (ArrayBuffer or typed array). */
  sendAudio(data) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && !this.finished) this.ws.send(data);
  }

  /** Bytes queued in the browser but not yet sent (for pacing uploads). */
  get bufferedAmount() {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  /** Resolves with the payload of the next `name` event (rejects if the task fails first). */
  waitFor(name) {
    const d = deferred();
    this.waiters.set(name, d);
    return d.promise;
  }

  /** Close the socket (normal closure). */
  close() {
    this.finished = true;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }

  #receive(data) {
    if (typeof data !== "string") {
      if (this.onAudio) this.onAudio(data);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // not JSON: nothing an NLS client can do with it
    }
    const header = message.header || {};
    const payload = message.payload || {};
    if (header.name === "TaskFailed") {
      this.#fail(new NlsError(header.status, header.status_text || header.status_message || ""));
      return;
    }
    if (this.onEvent) this.onEvent(header.name, payload, header);
    const waiter = this.waiters.get(header.name);
    if (waiter) {
      this.waiters.delete(header.name);
      waiter.resolve(payload);
    }
    if (/Completed$/.test(header.name || "")) {
      this.finished = true;
      this.done.resolve(payload);
      this.close();
    }
  }

  #fail(error) {
    this.finished = true;
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
    this.done.reject(error);
    this.close();
  }
}

/**
 * Real-time transcription (SpeechTranscriber, §5).
 * Callbacks get the event payloads: onSentenceBegin({index, time}),
 * onResultChanged({index, time, result}), onSentenceEnd({index, begin_time, time, result}).
 */
export class Transcriber {
  constructor({ token, appkey, url = null, onSentenceBegin, onResultChanged, onSentenceEnd }) {
    const handlers = {
      SentenceBegin: onSentenceBegin,
      TranscriptionResultChanged: onResultChanged,
      SentenceEnd: onSentenceEnd,
    };
    this.task = new NlsTask({
      token,
      appkey,
      url,
      namespace: "SpeechTranscriber",
      onEvent: (name, payload) => handlers[name]?.(payload),
    });
  }

  /** Connect and send StartTranscription; resolves with TranscriptionStarted's payload. */
  async start(params) {
    await this.task.open();
    const started = this.task.waitFor("TranscriptionStarted");
    this.task.send("StartTranscription", { format: "pcm", sample_rate: 16000, ...params });
    return Promise.race([started, this.task.done.promise]);
  }

  sendAudio(frame) {
    this.task.sendAudio(frame);
  }

  get bufferedAmount() {
    return this.task.bufferedAmount;
  }

  /** The promise that settles when the task ends (Completed or NlsError). */
  get done() {
    return this.task.done.promise;
  }

  /** Send StopTranscription; resolves on TranscriptionCompleted. */
  async stop() {
    if (!this.task.finished) this.task.send("StopTranscription");
    return this.task.done.promise;
  }

  abort() {
    this.task.close();
  }
}

/**
 * One-shot synthesis (SpeechSynthesizer, §6): resolves on SynthesisCompleted.
 * onAudio(ArrayBuffer) gets each binary frame; onMetaInfo(payload) each subtitle event.
 * Returns { task, done } so the caller can cancel with task.close().
 */
export function synthesize({ token, appkey, payload, url = null, onAudio, onMetaInfo }) {
  const task = new NlsTask({
    token,
    appkey,
    url,
    namespace: "SpeechSynthesizer",
    onAudio,
    onEvent: (name, p) => {
      if (name === "MetaInfo" && onMetaInfo) onMetaInfo(p);
    },
  });
  const done = (async () => {
    await task.open();
    task.send("StartSynthesis", payload);
    return task.done.promise;
  })();
  done.catch(() => {});
  return { task, done };
}
