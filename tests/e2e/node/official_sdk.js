// Drives the gateway with Alibaba Cloud's official Node.js SDK (npm alibabacloud-nls),
// written the way its docs (docs/SR.md, ST.md, TTS.md) and test/*.js use it.
//
// usage: node official_sdk.js <url> <appkey> <token> <16 kHz PCM file> <tts output file>
// Prints one JSON line per event the SDK emitted: {"task", "event", "message"}; the
// pytest side (test_official_node_sdk.py) checks them.
"use strict"

const fs = require("fs")
const Nls = require("alibabacloud-nls")

const [url, appkey, token, pcmPath, ttsPath] = process.argv.slice(2)
const config = { url, appkey, token }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function report(task, event, message) {
  console.log(JSON.stringify({ task, event, message: message === undefined ? null : message }))
}

function listen(task, client, events) {
  for (const event of events) {
    client.on(event, (msg) => report(task, event, msg === undefined ? null : msg.toString()))
  }
}

function chunks(data, size) {
  const out = []
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size))
  return out
}

async function recognize(pcm) {
  const sr = new Nls.SpeechRecognition(config)
  listen("sr", sr, ["started", "changed", "completed", "closed", "failed"])
  await sr.start(sr.defaultStartParams(), true, 6000)
  for (const b of chunks(pcm, 3200)) {
    if (!sr.sendAudio(b)) throw new Error("send audio failed")
    await sleep(5)
  }
  await sr.close()
  sr.shutdown()
}

async function transcribe(pcm) {
  const st = new Nls.SpeechTranscription(config)
  listen("st", st, ["started", "changed", "begin", "end", "completed", "closed", "failed"])
  await st.start(st.defaultStartParams(), true, 6000)
  st.ctrl({ max_sentence_silence: 800 })
  for (const b of chunks(pcm, 3200)) {
    if (!st.sendAudio(b)) throw new Error("send audio failed")
    await sleep(5)
  }
  await st.close()
  st.shutdown()
}

async function synthesize() {
  const tts = new Nls.SpeechSynthesizer(config)
  const out = fs.createWriteStream(ttsPath)
  listen("tts", tts, ["meta", "completed", "closed", "failed"])
  tts.on("data", (msg) => out.write(msg))
  const param = tts.defaultStartParams("xiaoyun")
  param.text = "今天天气很好，我们一起去公园散步吧。"
  param.enable_subtitle = true
  await tts.start(param, true, 6000)
  await new Promise((resolve) => out.end(resolve))
}

async function main() {
  const pcm = fs.readFileSync(pcmPath)
  await recognize(pcm)
  await transcribe(pcm)
  await synthesize()
}

main().then(
  () => process.exit(0),
  (err) => {
    report("main", "error", String(err))
    process.exit(1)
  },
)
