// CreateToken (protocol.md §11): a POP RPC request signed with HMAC-SHA1 (signature 1.0).
//
// SHA-1 is implemented here because WebCrypto (crypto.subtle) exists only on secure pages
// (https:// or localhost), and the console may be opened over plain http on a LAN.
// The AccessKey secret is used for one signature and never stored.

function sha1(bytes) {
  const ml = bytes.length;
  const padded = new Uint8Array((((ml + 8) >> 6) + 1) * 64);
  padded.set(bytes);
  padded[ml] = 0x80;
  const dv = new DataView(padded.buffer);
  dv.setUint32(padded.length - 8, Math.floor((ml * 8) / 2 ** 32));
  dv.setUint32(padded.length - 4, (ml * 8) >>> 0);
  let [h0, h1, h2, h3, h4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const w = new Uint32Array(80);
  const rotl = (x, n) => (x << n) | (x >>> (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + 4 * i);
    for (let i = 16; i < 80; i++) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    let [a, b, c, d, e] = [h0, h1, h2, h3, h4];
    for (let i = 0; i < 80; i++) {
      let f;
      let k;
      if (i < 20) [f, k] = [(b & c) | (~b & d), 0x5a827999];
      else if (i < 40) [f, k] = [b ^ c ^ d, 0x6ed9eba1];
      else if (i < 60) [f, k] = [(b & c) | (b & d) | (c & d), 0x8f1bbcdc];
      else [f, k] = [b ^ c ^ d, 0xca62c1d6];
      const t = (rotl(a, 5) + f + e + k + w[i]) >>> 0;
      [e, d, c, b, a] = [d, c, rotl(b, 30) >>> 0, a, t];
    }
    h0 = (h0 + a) >>> 0;
    h1 = (h1 + b) >>> 0;
    h2 = (h2 + c) >>> 0;
    h3 = (h3 + d) >>> 0;
    h4 = (h4 + e) >>> 0;
  }
  const out = new Uint8Array(20);
  const ov = new DataView(out.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => ov.setUint32(4 * i, h));
  return out;
}

function hmacSha1(keyBytes, messageBytes) {
  let key = keyBytes.length > 64 ? sha1(keyBytes) : keyBytes;
  const padded = new Uint8Array(64);
  padded.set(key);
  key = padded;
  const inner = new Uint8Array(64 + messageBytes.length);
  const outer = new Uint8Array(64 + 20);
  for (let i = 0; i < 64; i++) {
    inner[i] = key[i] ^ 0x36;
    outer[i] = key[i] ^ 0x5c;
  }
  inner.set(messageBytes, 64);
  outer.set(sha1(inner), 64);
  return sha1(outer);
}

/** RFC 3986 percent-encoding as POP wants it (space → %20, * → %2A, ~ kept). */
export function percentEncode(value) {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Base64 HMAC-SHA1 signature of a POP RPC request (§11.3). */
export function signature(method, params, secret) {
  const canonical = Object.keys(params)
    .filter((k) => k !== "Signature")
    .map((k) => [percentEncode(k), percentEncode(params[k])])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const toSign = `${method}&${percentEncode("/")}&${percentEncode(canonical)}`;
  const enc = new TextEncoder();
  const mac = hmacSha1(enc.encode(`${secret}&`), enc.encode(toSign));
  return btoa(String.fromCharCode(...mac));
}

function nonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Ask the gateway that served this page for a token.
 * Resolves with { token, expireTime (Unix s) }; rejects with an Error naming the POP Code.
 */
export async function createToken(accessKeyId, accessKeySecret, base = "") {
  const params = {
    AccessKeyId: accessKeyId,
    Action: "CreateToken",
    Format: "JSON",
    RegionId: "cn-shanghai",
    SignatureMethod: "HMAC-SHA1",
    SignatureNonce: nonce(),
    SignatureVersion: "1.0",
    Timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    Version: "2019-02-28",
  };
  params.Signature = signature("GET", params, accessKeySecret);
  const query = Object.entries(params)
    .map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`)
    .join("&");
  const response = await fetch(`${base}/?${query}`, { headers: { Accept: "application/json" } });
  let body = {};
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  if (!response.ok || !body.Token || !body.Token.Id) {
    const code = body.Code || `HTTP ${response.status}`;
    const message = body.Message || body.ErrMsg || response.statusText;
    const error = new Error(`${code}: ${message}`);
    error.code = body.Code || null;
    throw error;
  }
  return { token: body.Token.Id, expireTime: body.Token.ExpireTime };
}
