// A kernel: runs with callbacks in order, state, completion, help, files, interrupt, restart, attach: node kernel.mjs URL
import { connect, report } from "./common.mjs";

const c = await connect(process.argv[2]);
const k = await c.kernel({ language: "python" });
const events = [];
const code = [
  "import sys, time",
  "from IPython.display import display, Markdown",
  "for i in range(3):",
  "    print('out', i, flush=True)",
  "    time.sleep(0.05)",
  "    print('err', i, file=sys.stderr, flush=True)",
  "    time.sleep(0.05)",
  "display(Markdown('**m**'))",
  "x = 41",
  "x + 1",
].join("\n");
const ex = await k.run(code, {
  onStdout: (text) => events.push(["stdout", text]),
  onStderr: (text) => events.push(["stderr", text]),
  onDisplay: (output) => events.push(["display", output.output_type]),
  onOutput: (output) => events.push(["output", output.output_type]),
});
const state = await k.run("x");
const raised = await k.run("1/0");
const asked = await k.run("name = input('Name? ')\nprint('hello', name)", {
  onInput: async (prompt, password) => "Ada (" + prompt + ", " + password + ")",
});
// answering input() itself: the request comes to onOutput, a refused answer (too large) can be given again
const requests = [];
let refused = null;
const askedByHand = await k.run("print('got', input('Age? '))", {
  allowStdin: true,
  onOutput: (item) => {
    if (item.output_type !== "input_request") return;
    requests.push(item.prompt);
    k.input("x".repeat(300_000))
      .catch((e) => (refused = e.constructor.name))
      .then(() => k.input("42"));
  },
});
const completion = await k.complete("import o", 8);
const help = await k.inspect("len(", 3);
const big = Uint8Array.from({ length: 2_500_000 }, (_, i) => (i * 7) % 256);
const wrote = await k.files.write("dir/big.bin", big);
const read = await k.files.read("dir/big.bin");
await k.files.write("note.txt", "über");
const textBack = await k.files.readText("note.txt");
const listing = (await k.files.list()).map((f) => [f.name, f.type]).sort();
const made = await k.run("open('made.txt', 'w').write('m')");
// interrupt a long loop from another call once it runs (it says so)
let running;
const started = new Promise((resolve) => (running = resolve));
const loop = k.run("import time\nprint('looping', flush=True)\nfor i in range(600): time.sleep(0.1)", {
  onStdout: running,
});
await started;
await k.interrupt();
const interrupted = await loop;
const executions = await k.executions();
const replay = [];
const attached = await k.attach(1, { since: 2, onOutput: (o) => replay.push(o.output_type + ":" + (o.name || "")) });
const byTag = await k.attach(ex.tag);
await k.restart();
const afterRestart = await k.run("'x' in dir()");
await k.shutdown();
await c.close();
report({
  status: ex.status,
  execution: ex.execution,
  tag: ex.tag,
  text: ex.text,
  stdout: ex.stdout,
  stderr: ex.stderr,
  events,
  outputs: ex.outputs.map((o) => o.output_type + ":" + (o.name || "")),
  state: state.text,
  raised: [raised.status, raised.error && raised.error.ename],
  asked: asked.stdout,
  asked_by_hand: [askedByHand.stdout, requests, refused],
  completion: completion.matches,
  help_found: help.found,
  wrote,
  read_ok: read.length === big.length && read.every((b, i) => b === big[i]),
  text_back: textBack,
  listing,
  made_files: made.files,
  interrupted: [interrupted.status, interrupted.error && interrupted.error.ename],
  executions,
  attached: [attached.status, attached.execution, attached.raw.next, attached.stdout],
  replay,
  by_tag: [byTag.execution, byTag.text],
  after_restart: afterRestart.text,
});
