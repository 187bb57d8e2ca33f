// publish.mjs: publish one event to quaycast's NATS with a publisher credential (nats.js v2).
//
//   export NATS_URL=nats://127.0.0.1:4222 QUAYCAST_NATS_CREDENTIAL=qcp_...
//   node publish.mjs '{"id":"evt-1","type":"cargo_loaded","source":"tos","entity":"MSCU1234567","occurred_at":"2026-11-23T10:00:00Z","data":{}}'
//   node publish.mjs tos cargo_loaded MSCU1234567 [id] [data-json]
//
// Prints JetStream's acknowledgement as JSON. FOLLOW_REPLIES=1 also waits for a receiver's reply
// to this event (the credential needs "replies": true) and prints its subject and body.
// TIMEOUT_MS (default 5000) bounds connecting, the acknowledgement and the wait for a reply.
import { randomUUID } from "node:crypto";
import { connect, headers } from "nats";

const timeout = Number(process.env.TIMEOUT_MS ?? 5000);
const [first, ...rest] = process.argv.slice(2);
if (!process.env.QUAYCAST_NATS_CREDENTIAL || !(first?.trimStart().startsWith("{") || rest.length >= 2)) {
  console.error("usage: QUAYCAST_NATS_CREDENTIAL=qcp_... node publish.mjs EVENT-JSON | SOURCE TYPE ENTITY [ID] [DATA-JSON]");
  process.exit(2);
}

// An event given as JSON is published as it is: receivers get these very bytes.
let event, body;
if (first.trimStart().startsWith("{")) {
  body = first;
  event = JSON.parse(first);
} else {
  const [type, entity, id = randomUUID(), data = "{}"] = rest;
  event = { id, type, source: first, entity, occurred_at: new Date().toISOString(), data: JSON.parse(data) };
  body = JSON.stringify(event);
}

const nc = await connect({
  servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222",
  token: process.env.QUAYCAST_NATS_CREDENTIAL,
  timeout,
}).catch(fail);

try {
  // Subscribe before publishing, so that no reply can come before we listen.
  const replies = process.env.FOLLOW_REPLIES === "1" ? nc.subscribe(`quaycast.reply.${event.source}.>`) : null;
  await nc.flush(); // the server has the subscription now, or has refused it
  if (replies?.isClosed()) throw new Error(`may not follow quaycast.reply.${event.source}.>: does the credential have "replies": true?`);

  // The msgID option sets Nats-Msg-Id. Quaycast-Entity is optional: header values lose their outer
  // spaces (nats.js trims them), so an entity that has some is left to the envelope.
  const h = headers();
  if (typeof event.entity === "string" && event.entity === event.entity.trim()) h.set("Quaycast-Entity", event.entity);
  const ack = await nc.jetstream({ timeout }).publish(`evt.${event.source}.${event.type}`, body, { msgID: event.id, headers: h });
  console.log(JSON.stringify({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate }));

  if (replies) {
    // Replies to every event of the source come here: keep the one to ours.
    const timer = setTimeout(() => replies.unsubscribe(), timeout);
    let reply;
    for await (const m of replies) {
      if (m.headers?.get("Quaycast-Delivery-Id") === event.id) {
        reply = m;
        break;
      }
    }
    clearTimeout(timer);
    if (!reply) throw new Error(`no reply to ${event.id} within ${timeout} ms`);
    console.log(JSON.stringify({ subject: reply.subject, body: reply.string() }));
  }
  await nc.drain();
} catch (err) {
  await nc.close();
  fail(err);
}

function fail(err) {
  const code = err.code && err.code !== err.message ? ` (${err.code})` : "";
  console.error(`publish.mjs: ${err.message}${code}`);
  process.exit(1);
}
