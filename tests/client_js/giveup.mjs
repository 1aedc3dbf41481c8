// What a drop the client cannot mend does: node giveup.mjs URL
import { connect, errors, failure, report } from "./common.mjs";
import { relayTo } from "./relay.mjs";

const url = process.argv[2];
const out = {};

// 1. the kernel is gone when the connection comes back (another holder of its token took it and shut it down)
{
  const relay = await relayTo(url);
  const c = await connect(relay.url);
  const k = await c.kernel();
  let first;
  const printing = new Promise((resolve) => (first = resolve));
  const run = failure(
    k.run("import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)", { onStdout: first }),
    errors,
  );
  await printing;
  relay.hold(true);
  relay.cut();
  const other = await connect(url);
  const taken = await other.resume(k.id, k.resumeToken);
  await taken.shutdown();
  await other.close();
  relay.hold(false);
  out.kernel_gone = await run;
  out.kernel_gone_then = await failure(k.run("1"), errors);
  await c.close();
  relay.close();
}

// 2. the node stays out of reach past reconnectFor: what waits fails, and so does what comes after
{
  const relay = await relayTo(url);
  const c = await connect(relay.url, { reconnectFor: 1 });
  const events = [];
  const closed = new Promise((resolve) => c.on("closed", (e) => (events.push(["closed", e.constructor.name]), resolve())));
  c.on("disconnected", () => events.push(["disconnected"]));
  const k = await c.kernel();
  let first;
  const printing = new Promise((resolve) => (first = resolve));
  const run = failure(k.run("import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)", { onStdout: first }), errors);
  await printing;
  relay.hold(true);
  relay.cut();
  out.unreachable_run = await run;
  await closed;
  out.unreachable_events = events;
  out.unreachable_then = await failure(c.run("1"), errors);
  relay.close();
}
report(out);
