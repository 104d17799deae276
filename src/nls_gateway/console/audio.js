// Browser audio for the console: microphone capture, file decoding, streamed playback, WAV.

export const ASR_RATE = 16000;
export const FRAME_SAMPLES = 1600; // 100 ms at 16 kHz = 3200 bytes per binary frame

/**
 * Microphone → 16 kHz 16-bit PCM frames of 100 ms through an AudioWorklet.
 * onFrame(ArrayBuffer, peak) is called for every frame.
 */
export class MicCapture {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.ctx = null;
    this.stream = null;
    this.node = null;
  }

  async start() {
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      throw new Error(
        "This browser cannot capture audio here: the microphone needs a secure page " +
          "(https:// or http://localhost).",
      );
    }
    // Raw audio: the browser's echo cancellation / gain control measurably hurt recognition
    // (the fake-microphone test loses 3 more characters of 19 with them on).
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        echoCancellation: false,
        noiseSuppression: false,
        autoGainControl: false,
      },
    });
    try {
      this.ctx = new AudioContext({ latencyHint: "interactive" });
      await this.ctx.audioWorklet.addModule(new URL("./pcm-worklet.js", import.meta.url));
      const source = this.ctx.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.ctx, "pcm16-encoder", {
        numberOfInputs: 1,
        numberOfOutputs: 0, // a sink: processed without being connected to the speakers
        channelCount: 1,
        channelCountMode: "explicit",
        channelInterpretation: "speakers",
        processorOptions: { targetRate: ASR_RATE, frameSamples: FRAME_SAMPLES },
      });
      this.flushed = new Promise((resolve) => {
        this.node.port.onmessage = (ev) => {
          if (ev.data.type === "frame") this.onFrame(ev.data.pcm, ev.data.peak);
          else if (ev.data.type === "flushed") resolve();
        };
      });
      source.connect(this.node);
      if (this.ctx.state === "suspended") await this.ctx.resume();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** The capture rate before resampling (for display). */
  get inputRate() {
    return this.ctx ? this.ctx.sampleRate : 0;
  }

  /** Post the last partial frame, then release the microphone. */
  async stop() {
    if (this.node) {
      this.node.port.postMessage({ type: "flush" });
      await Promise.race([this.flushed, new Promise((r) => setTimeout(r, 500))]);
      this.node.disconnect();
      this.node = null;
    }
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
    }
    if (this.ctx) {
      await this.ctx.close().catch(() => {});
      this.ctx = null;
    }
  }
}

/**
 * Decode any audio file the browser understands and return 16 kHz mono Int16 samples.
 * decodeAudioData resamples to the context's rate, so a 16 kHz OfflineAudioContext does
 * the resampling; channels are averaged.
 */
export async function decodeToPcm16k(arrayBuffer) {
  const ctx = new OfflineAudioContext(1, 1, ASR_RATE);
  const audio = await ctx.decodeAudioData(arrayBuffer);
  const n = audio.length;
  const mono = new Float32Array(n);
  for (let c = 0; c < audio.numberOfChannels; c++) {
    const data = audio.getChannelData(c);
    for (let i = 0; i < n; i++) mono[i] += data[i] / audio.numberOfChannels;
  }
  return floatToInt16(mono);
}

export function floatToInt16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
  }
  return out;
}

/**
 * Plays 16-bit mono PCM as it streams in: each chunk becomes an AudioBuffer scheduled
 * right after the previous one. Tracks where playback is in the received audio (for
 * subtitles) and how many samples have actually finished playing.
 */
export class PcmPlayer {
  /** Create inside a user gesture (click) so autoplay rules allow the sound. */
  constructor(sampleRate, { onPlayed = null } = {}) {
    this.rate = sampleRate;
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    this.gain = this.ctx.createGain();
    this.gain.connect(this.ctx.destination);
    this.nextTime = 0;
    this.received = 0; // samples scheduled so far
    this.played = 0; // samples whose buffer has finished playing
    this.carry = null; // odd trailing byte of the previous chunk
    this.segments = []; // { start (ctx time), offset (sample index), length }
    this.sources = new Set();
    this.onPlayed = onPlayed;
    this.ctx.resume().catch(() => {});
  }

  /** Queue one binary frame of little-endian 16-bit PCM. */
  push(arrayBuffer) {
    let bytes = new Uint8Array(arrayBuffer);
    if (this.carry !== null) {
      const joined = new Uint8Array(bytes.length + 1);
      joined[0] = this.carry;
      joined.set(bytes, 1);
      bytes = joined;
      this.carry = null;
    }
    if (bytes.length % 2) {
      this.carry = bytes[bytes.length - 1];
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    const n = bytes.length / 2;
    if (!n) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const buffer = this.ctx.createBuffer(1, n, this.rate);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < n; i++) data[i] = view.getInt16(2 * i, true) / 32768;
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.gain);
    // Start 80 ms ahead the first time (and after an underrun) to absorb network jitter.
    const start = Math.max(this.nextTime, this.ctx.currentTime + 0.08);
    source.start(start);
    this.segments.push({ start, offset: this.received, length: n });
    this.received += n;
    this.nextTime = start + n / this.rate;
    this.sources.add(source);
    source.onended = () => {
      this.sources.delete(source);
      this.played += n;
      if (this.onPlayed) this.onPlayed(this.played);
    };
  }

  /** Position of playback in the received audio, in ms (for subtitle highlighting). */
  positionMs() {
    const now = this.ctx.currentTime;
    let pos = 0;
    for (const seg of this.segments) {
      if (now < seg.start) break;
      pos = seg.offset + Math.min(seg.length, (now - seg.start) * this.rate);
    }
    return (pos / this.rate) * 1000;
  }

  /** True while scheduled audio remains. */
  get playing() {
    return this.sources.size > 0;
  }

  /** Resolves when everything scheduled has played. */
  async drained() {
    while (this.sources.size) await new Promise((r) => setTimeout(r, 50));
  }

  async close() {
    for (const source of this.sources) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        /* already stopped */
      }
    }
    this.sources.clear();
    await this.ctx.close().catch(() => {});
  }
}

/** A WAV file (RIFF, 16-bit PCM mono) from PCM byte chunks. */
export function pcmToWav(chunks, sampleRate) {
  let length = chunks.reduce((n, c) => n + c.byteLength, 0);
  length -= length % 2;
  const out = new Uint8Array(44 + length);
  const v = new DataView(out.buffer);
  const ascii = (at, s) => [...s].forEach((ch, i) => v.setUint8(at + i, ch.charCodeAt(0)));
  ascii(0, "RIFF");
  v.setUint32(4, 36 + length, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  v.setUint32(16, 16, true); // fmt chunk size
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * 2, true); // byte rate
  v.setUint16(32, 2, true); // block align
  v.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  v.setUint32(40, length, true);
  let at = 44;
  for (const chunk of chunks) {
    const bytes = new Uint8Array(chunk).subarray(0, Math.min(chunk.byteLength, 44 + length - at));
    out.set(bytes, at);
    at += bytes.length;
  }
  return new Blob([out], { type: "audio/wav" });
}
