// Dropped connections resumed mid-run: node resume.mjs URL
// The client connects through a TCP relay in this process; the relay cuts every connection at chosen moments (the
// node sees the socket close, as when a network drops), then lets the client connect again.
import { connect, report } from "./common.mjs";
import { relayTo } from "./relay.mjs";

const relay = await relayTo(process.argv[2]);
const cuts = [];
function cut(why) {
  cuts.push(why);
  relay.cut();
}

const c = await connect(relay.url);
const events = [];
c.on("disconnected", () => events.push("disconnected"));
c.on("reconnected", () => events.push("reconnected"));
const k = await c.kernel();
await k.run("state = 'kept'");

// 1. cut twice while a loop prints 60 lines; every line must come once, in order
const lines = [];
let cutAt = [15, 40];
const loop = await k.run("import time\nfor i in range(60):\n    print('line', i, flush=True)\n    time.sleep(0.03)", {
  onStdout: (text) => {
    for (const line of text.split("\n").filter(Boolean)) {
      lines.push(line);
      if (cutAt.length && line === "line " + cutAt[0]) {
        cutAt.shift();
        cut("mid-run at " + line);
      }
    }
  },
});

// 2. cut right after the execute is sent, before any output: the code runs once (it appends to a file)
const once = k.run("open('runs.txt', 'a').write('run\\n')\nprint('ran', flush=True)");
cut("just after execute was sent");
const onceResult = await once;
const runs = await k.files.readText("runs.txt");

// 3. cut while no call is in flight, then use the kernel: the state is there
cut("idle");
const state = await k.run("state");

// 4. a run without callbacks, cut mid-run: its outputs come whole in the result
// (the cut comes when the kernel's iopub, which this client also follows, shows 'q 5')
let quietCut = false;
const stop = await k.subscribe((msg) => {
  const text = msg.header.msg_type === "stream" ? msg.content.text : "";
  if (!quietCut && text.includes("q 5\n")) {
    quietCut = true;
    cut("mid quiet run");
  }
});
const quietResult = await k.run("import time\nfor i in range(20):\n    print('q', i, flush=True)\n    time.sleep(0.03)");
await stop();

await c.close();
relay.close();
report({
  lines,
  stdout: loop.stdout,
  status: loop.status,
  cuts,
  events,
  once: [onceResult.status, onceResult.stdout],
  runs,
  state: state.text,
  quiet: quietResult.stdout,
});
