// The Node.js @azure/service-bus SDK (pinned in package-lock.json) against the local broker.
//
// Driven by tests/sandbox/test_servicebus_node.py: argv[2] is the broker's emulator-mode
// connection string, argv[3] the name of one check (or "list"). Each check uses its own
// entities from the test's Config.json and prints one JSON line: {"check", "ok", "detail"}.
// A check that throws prints ok: false with the SDK's error, so the test shows what Azure's
// client saw.
"use strict";

const { ServiceBusClient } = require("@azure/service-bus");

const connectionString = process.argv[2];
const wanted = process.argv[3];
const WAIT = { maxWaitTimeInMs: 10000 };

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function receiveOne(receiver, what) {
  const [message] = await receiver.receiveMessages(1, WAIT);
  expect(message !== undefined, `no message received ${what}`);
  return message;
}

async function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const checks = {
  // send, receive in peek-lock, complete: the queue is then empty
  async sendReceiveComplete(client) {
    await client.createSender("node-basic").sendMessages({
      body: { hello: "node" },
      messageId: "m-1",
      correlationId: "c-1",
      subject: "greeting",
      contentType: "application/json",
      applicationProperties: { step: "accepted", attempt: 2 },
    });
    const receiver = client.createReceiver("node-basic");
    const message = await receiveOne(receiver, "after send");
    expect(message.body.hello === "node", `body ${JSON.stringify(message.body)}`);
    expect(message.messageId === "m-1" && message.correlationId === "c-1", "ids changed");
    expect(message.subject === "greeting", `subject ${message.subject}`);
    expect(message.applicationProperties.step === "accepted", "application properties lost");
    expect(message.deliveryCount === 0, `first delivery count ${message.deliveryCount}`);
    expect(message.sequenceNumber !== undefined && message.lockedUntilUtc, "no broker properties");
    await receiver.completeMessage(message);
    const left = await client.createReceiver("node-basic").peekMessages(10);
    expect(left.length === 0, `${left.length} message(s) left after complete`);
    return "complete removed it";
  },

  // Service Bus stamps a message id on a message sent without one; settling works
  async noMessageId(client) {
    await client.createSender("node-no-id").sendMessages({ body: "anonymous" });
    const receiver = client.createReceiver("node-no-id");
    const message = await receiveOne(receiver, "without message id");
    expect(typeof message.messageId === "string" && message.messageId.length > 0,
      `message id ${message.messageId}`);
    await receiver.completeMessage(message);
    const left = await receiver.peekMessages(10);
    expect(left.length === 0, "the message was not completed");
    return `broker-assigned id ${message.messageId}`;
  },

  // abandon counts a delivery and applies the modified properties; the poison message is
  // dead-lettered when the count reaches MaxDeliveryCount (3 on node-abandon)
  async abandonCountsAndDeadLetters(client) {
    await client.createSender("node-abandon").sendMessages({ body: "poison", messageId: "p-1" });
    const receiver = client.createReceiver("node-abandon");
    const counts = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const message = await receiveOne(receiver, `on attempt ${attempt}`);
      counts.push(message.deliveryCount);
      if (attempt === 2) {
        expect(message.applicationProperties.tries === 1, "modified property not applied");
      }
      await receiver.abandonMessage(message, { tries: attempt });
    }
    expect(JSON.stringify(counts) === "[0,1,2]", `delivery counts ${JSON.stringify(counts)}`);
    const more = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    expect(more.length === 0, "delivered again after MaxDeliveryCount");
    const dead = client.createReceiver("node-abandon", { subQueueType: "deadLetter" });
    const letter = await receiveOne(dead, "in the dead-letter queue");
    expect(letter.deadLetterReason === "MaxDeliveryCountExceeded",
      `reason ${letter.deadLetterReason}`);
    expect(letter.deliveryCount === 3, `dead-lettered delivery count ${letter.deliveryCount}`);
    await dead.completeMessage(letter);
    return `delivery counts ${JSON.stringify(counts)}, dead-lettered at 3`;
  },

  async deadLetter(client) {
    await client.createSender("node-dead-letter").sendMessages({ body: "bad", messageId: "d-1" });
    const receiver = client.createReceiver("node-dead-letter");
    const message = await receiveOne(receiver, "to dead-letter");
    await receiver.deadLetterMessage(message, {
      deadLetterReason: "Invalid",
      deadLetterErrorDescription: "the body is not a request",
    });
    const dead = client.createReceiver("node-dead-letter", { subQueueType: "deadLetter" });
    const letter = await receiveOne(dead, "in the dead-letter queue");
    expect(letter.deadLetterReason === "Invalid", `reason ${letter.deadLetterReason}`);
    expect(letter.deadLetterErrorDescription === "the body is not a request", "description lost");
    await dead.completeMessage(letter);
    return "reason and description kept";
  },

  // defer hides the message from receivers; receiveDeferredMessages gets it by sequence number
  async deferAndReceiveDeferred(client) {
    await client.createSender("node-defer").sendMessages({ body: "later", messageId: "f-1" });
    const receiver = client.createReceiver("node-defer");
    const message = await receiveOne(receiver, "to defer");
    await receiver.deferMessage(message);
    const again = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    expect(again.length === 0, "a deferred message was delivered again");
    const [deferred] = await receiver.receiveDeferredMessages(message.sequenceNumber);
    expect(deferred && deferred.body === "later", "deferred message not received");
    expect(deferred.state === "deferred", `state ${deferred.state}`);
    await receiver.completeMessage(deferred);
    const gone = await receiver.receiveDeferredMessages(message.sequenceNumber).then(
      (found) => found.length,
      (error) => error.code,
    );
    expect(gone === "MessageNotFound", `after complete: ${gone}`);
    return "deferred, received by sequence number, completed";
  },

  async peek(client) {
    const sender = client.createSender("node-peek");
    await sender.sendMessages([
      { body: "one", messageId: "k-1" },
      { body: "two", messageId: "k-2" },
    ]);
    const [later] = await sender.scheduleMessages(
      { body: "later", messageId: "k-3" }, new Date(Date.now() + 3600 * 1000));
    const receiver = client.createReceiver("node-peek");
    const peeked = await receiver.peekMessages(5);
    expect(peeked.map((m) => m.body).join() === "one,two,later", `peeked ${peeked.length}`);
    expect(peeked[2].state === "scheduled", `a scheduled message peeked as ${peeked[2].state}`);
    await sender.cancelScheduledMessages(later);
    const message = await receiveOne(receiver, "after peek");
    expect(message.body === "one", "peek locked or removed a message");
    await receiver.completeMessage(message);
    const next = await receiveOne(receiver, "second");
    await receiver.completeMessage(next);
    return "peek saw both and the scheduled one, locked none";
  },

  async scheduleAndCancel(client) {
    const sender = client.createSender("node-schedule");
    const at = new Date(Date.now() + 3000);
    const [kept] = await sender.scheduleMessages({ body: "kept", messageId: "s-1" }, at);
    const [cancelled] = await sender.scheduleMessages({ body: "cancelled", messageId: "s-2" }, at);
    await sender.cancelScheduledMessages(cancelled);
    const receiver = client.createReceiver("node-schedule");
    const early = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
    expect(early.length === 0 || early[0].body !== "kept" || Date.now() >= at.getTime(),
      "a scheduled message arrived before its time");
    const message = early.length ? early[0] : await receiveOne(receiver, "when scheduled");
    expect(message.body === "kept", `got ${message.body}`);
    expect(message.sequenceNumber.equals(kept), "sequence number differs from the schedule's");
    await receiver.completeMessage(message);
    const more = await receiver.receiveMessages(1, { maxWaitTimeInMs: 4000 });
    expect(more.length === 0, "the cancelled message was delivered");
    return "scheduled one delivered, cancelled one not";
  },

  // node-renew has LockDuration PT5S; a renewed lock outlives the first one
  async renewLock(client) {
    await client.createSender("node-renew").sendMessages({ body: "slow", messageId: "r-1" });
    const receiver = client.createReceiver("node-renew", { maxAutoLockRenewalDurationInMs: 0 });
    const message = await receiveOne(receiver, "to renew");
    const first = message.lockedUntilUtc.getTime();
    await sleep(1200);
    const renewed = await receiver.renewMessageLock(message);
    expect(renewed.getTime() > first, `renewed until ${renewed.toISOString()}`);
    await sleep(4500); // past the first lock, within the renewed one
    await receiver.completeMessage(message);
    return "completed after the first lock ran out";
  },

  // node-ttl dead-letters on expiration
  async ttlExpiry(client) {
    await client.createSender("node-ttl").sendMessages({
      body: "stale", messageId: "t-1", timeToLive: 1000,
    });
    await sleep(2500);
    const receiver = client.createReceiver("node-ttl");
    const none = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    expect(none.length === 0, "an expired message was delivered");
    const dead = client.createReceiver("node-ttl", { subQueueType: "deadLetter" });
    const letter = await receiveOne(dead, "expired, in the dead-letter queue");
    expect(letter.deadLetterReason === "TTLExpiredException", `reason ${letter.deadLetterReason}`);
    await dead.completeMessage(letter);
    return "expired message dead-lettered";
  },

  // node-sessions has RequiresSession: a session receiver gets that session's messages in order
  async sessions(client) {
    const sender = client.createSender("node-sessions");
    await sender.sendMessages([
      { body: "a1", sessionId: "a", messageId: "a1" },
      { body: "b1", sessionId: "b", messageId: "b1" },
      { body: "a2", sessionId: "a", messageId: "a2" },
    ]);
    const receiver = await client.acceptSession("node-sessions", "a");
    expect(receiver.sessionLockedUntilUtc instanceof Date, "no session lock");
    const got = await receiver.receiveMessages(5, { maxWaitTimeInMs: 3000 });
    expect(got.map((m) => m.body).join() === "a1,a2", `session a got ${got.map((m) => m.body)}`);
    for (const message of got) await receiver.completeMessage(message);
    await receiver.setSessionState("seen-2");
    expect((await receiver.getSessionState()).toString() === "seen-2", "session state lost");
    await receiver.renewSessionLock();
    await receiver.close();
    const next = await client.acceptNextSession("node-sessions");
    expect(next.sessionId === "b", `next session ${next.sessionId}`);
    const [b1] = await next.receiveMessages(1, WAIT);
    expect(b1 && b1.body === "b1", "session b's message not received");
    await next.completeMessage(b1);
    await next.close();
    return "session a in order, then next session b";
  },

  // node-sessions-only has RequiresSession: a message without a session id is refused (the
  // batch is not enqueued), and so is a receiver that is not a session receiver
  async sessionRefusals(client) {
    const sent = await client.createSender("node-sessions-only")
      .sendMessages({ body: "no session", messageId: "n-1" })
      .then(() => "sent", (error) => error);
    expect(sent !== "sent", "a message without session id was accepted");
    expect(/The SessionId was not set on a message/.test(sent.message), `send: ${sent.message}`);
    const plain = client.createReceiver("node-sessions-only");
    const received = await plain.receiveMessages(1, { maxWaitTimeInMs: 2000 })
      .then((got) => `got ${got.length}`, (error) => error);
    expect(typeof received !== "string", `a plain receiver ${received}`);
    expect(/requires sessions/.test(received.message), `receive: ${received.message}`);
    await client.createSender("node-sessions-only")
      .sendMessages({ body: "with session", sessionId: "s", messageId: "n-2" });
    const session = await client.acceptNextSession("node-sessions-only");
    const got = await session.receiveMessages(5, { maxWaitTimeInMs: 2000 });
    expect(got.map((m) => m.body).join() === "with session", `queued ${got.map((m) => m.body)}`);
    for (const message of got) await session.completeMessage(message);
    await session.close();
    return `send refused (${sent.code}), plain receiver refused (${received.code})`;
  },

  // the app's topic: the failures subscription takes only status=failed
  async topicRules(client) {
    await client.createSender("gpu-provisioning-events").sendMessages([
      { body: "ok", messageId: "e-1", applicationProperties: { status: "succeeded", step: "a" } },
      { body: "bad", messageId: "e-2", applicationProperties: { status: "failed", step: "b" } },
    ]);
    const failures = client.createReceiver("gpu-provisioning-events", "failures");
    const got = await failures.receiveMessages(5, { maxWaitTimeInMs: 3000 });
    expect(got.map((m) => m.body).join() === "bad", `failures got ${got.map((m) => m.body)}`);
    for (const message of got) await failures.completeMessage(message);
    const all = client.createReceiver("gpu-provisioning-events", "all");
    const everything = await all.receiveMessages(5, { maxWaitTimeInMs: 3000 });
    expect(everything.length === 2, `all got ${everything.length}`);
    for (const message of everything) await all.completeMessage(message);
    return "rules routed by application property";
  },

  // the subscriptions' rules as the SDK's rule manager lists them: `$Default` alone, its
  // TrueFilter (1=1) on `all`, replaced by the correlation filter on `failures`
  async defaultRule(client) {
    const all = await client.createRuleManager("gpu-provisioning-events", "all").getRules();
    const shown = (rules) => JSON.stringify(rules.map((r) => [r.name, r.filter]));
    expect(all.length === 1 && all[0].name === "$Default", `all has ${shown(all)}`);
    expect(all[0].filter.sqlExpression === "1=1", `all's filter ${shown(all)}`);
    const failures = await client
      .createRuleManager("gpu-provisioning-events", "failures")
      .getRules();
    expect(failures.length === 1 && failures[0].name === "$Default", `${shown(failures)}`);
    const props = failures[0].filter.applicationProperties;
    expect(props && props.status === "failed", `failures' filter ${shown(failures)}`);
    return "$Default alone on each subscription, filtering where Config.json says";
  },
};

async function main() {
  if (wanted === "list") {
    console.log(JSON.stringify(Object.keys(checks)));
    return;
  }
  const client = new ServiceBusClient(connectionString, {
    retryOptions: { maxRetries: 0, timeoutInMs: 15000 },
  });
  let result;
  try {
    result = { check: wanted, ok: true, detail: await checks[wanted](client) };
  } catch (error) {
    result = { check: wanted, ok: false, detail: `${error.code || error.name}: ${error.message}` };
  } finally {
    await client.close();
  }
  console.log(JSON.stringify(result));
}

main().catch((error) => {
  console.log(JSON.stringify({ check: wanted, ok: false, detail: String(error) }));
  process.exitCode = 1;
});
