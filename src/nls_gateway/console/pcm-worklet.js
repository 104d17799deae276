// AudioWorklet: microphone samples at the context rate → 16 kHz 16-bit mono PCM frames.
//
// The context runs at the hardware rate (44.1 or 48 kHz usually); a windowed-sinc
// low-pass resampler brings the first input channel to `targetRate`, and every
// `frameSamples` output samples (1600 = 100 ms at 16 kHz, 3200 bytes: the frame size the
// NLS docs recommend, protocol.md §10.2) are posted to the page as an ArrayBuffer:
//   { type: "frame", pcm: ArrayBuffer, peak: 0..1 }
// The page posts { type: "flush" } before stopping: the partial last frame is posted, then
// { type: "flushed" }.

const ZERO_CROSSINGS = 8; // kernel half-width in zero crossings of the low-pass sinc
const PHASES = 256; // fractional positions precomputed per kernel

class Resampler {
  constructor(inRate, outRate) {
    this.step = inRate / outRate; // input samples per output sample
    this.passthrough = inRate === outRate;
    const cutoff = Math.min(1, outRate / inRate) * 0.92; // fraction of the input Nyquist
    this.half = Math.ceil(ZERO_CROSSINGS / cutoff);
    const taps = 2 * this.half;
    // table[p * taps + k] = weight of input n = floor(t) - half + 1 + k, for frac(t) = p / PHASES
    this.table = new Float32Array(PHASES * taps);
    for (let p = 0; p < PHASES; p++) {
      const frac = p / PHASES;
      let sum = 0;
      for (let k = 0; k < taps; k++) {
        const x = k - this.half + 1 - frac; // distance of the tap from t, in input samples
        const u = cutoff * x;
        const sinc = u === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
        const w = Math.abs(x) >= this.half ? 0 : 0.5 * (1 + Math.cos((Math.PI * x) / this.half));
        const v = cutoff * sinc * w;
        this.table[p * taps + k] = v;
        sum += v;
      }
      for (let k = 0; k < taps; k++) this.table[p * taps + k] /= sum; // unity DC gain
    }
    this.taps = taps;
    this.buf = new Float32Array(16384);
    this.base = -this.half; // absolute input index of buf[0]; the stream starts with zeros
    this.len = this.half; // valid samples in buf
    this.t = 0; // absolute input position of the next output sample
  }

  /** Feed input samples; call emit(sample) for every output sample now computable. */
  push(input, emit) {
    if (this.passthrough) {
      for (let i = 0; i < input.length; i++) emit(input[i]);
      return;
    }
    this.#append(input);
    const { table, taps, half } = this;
    const end = this.base + this.len; // first absolute index not yet received
    while (Math.floor(this.t) + half < end) {
      const i0 = Math.floor(this.t);
      const phase = Math.min(PHASES - 1, Math.round((this.t - i0) * PHASES));
      const row = phase * taps;
      let at = i0 - half + 1 - this.base;
      let y = 0;
      for (let k = 0; k < taps; k++, at++) y += this.buf[at] * table[row + k];
      emit(y);
      this.t += this.step;
    }
  }

  #append(input) {
    const keepFrom = Math.floor(this.t) - this.half + 1; // oldest sample still needed
    const drop = Math.max(0, keepFrom - this.base);
    if (this.len + input.length > this.buf.length) {
      if (drop > 0) {
        this.buf.copyWithin(0, drop, this.len);
        this.len -= drop;
        this.base += drop;
      }
      if (this.len + input.length > this.buf.length) {
        const bigger = new Float32Array(2 * (this.len + input.length));
        bigger.set(this.buf.subarray(0, this.len));
        this.buf = bigger;
      }
    }
    this.buf.set(input, this.len);
    this.len += input.length;
  }
}

class Pcm16Encoder extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.targetRate = opts.targetRate || 16000;
    this.frameSamples = opts.frameSamples || 1600;
    this.resampler = new Resampler(sampleRate, this.targetRate);
    this.#newFrame();
    this.stopped = false;
    this.emit = (v) => {
      const s = Math.max(-1, Math.min(1, v));
      const a = Math.abs(s);
      if (a > this.peak) this.peak = a;
      this.frame[this.fill++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
      if (this.fill === this.frameSamples) this.#post();
    };
    this.port.onmessage = (ev) => {
      if (ev.data && ev.data.type === "flush") {
        if (this.fill > 0) this.#post();
        this.stopped = true;
        this.port.postMessage({ type: "flushed" });
      }
    };
  }

  #newFrame() {
    this.frame = new Int16Array(this.frameSamples);
    this.fill = 0;
    this.peak = 0;
  }

  #post() {
    const pcm = this.frame.buffer.slice(0, this.fill * 2);
    this.port.postMessage({ type: "frame", pcm, peak: this.peak }, [pcm]);
    this.#newFrame();
  }

  process(inputs) {
    if (this.stopped) return false;
    const channel = inputs[0] && inputs[0][0];
    if (channel && channel.length) this.resampler.push(channel, this.emit);
    return true;
  }
}

registerProcessor("pcm16-encoder", Pcm16Encoder);
