// A one-shot with input files, returned files and callbacks: node oneshot.mjs URL
import { connect, report } from "./common.mjs";

const c = await connect(process.argv[2]);
const events = [];
const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
const code = [
  "import sys",
  "print(open('a.txt').read())",
  "print('warn', file=sys.stderr, flush=True)",
  "data = open('in.bin', 'rb').read()",
  "open('out.bin', 'wb').write(bytes(reversed(data)))",
  "from IPython.display import display, HTML",
  "display(HTML('<b>x</b>'))",
  "len(data)",
].join("\n");
const ex = await c.run(code, {
  files: { "a.txt": "hello from a file", "in.bin": binary },
  returnFiles: true,
  timeout: 20,
  onStdout: (text) => events.push(["stdout", text]),
  onStderr: (text) => events.push(["stderr", text]),
  onDisplay: (output) => events.push(["display", output.output_type, Object.keys(output.data).sort()]),
});
const out = { data: ex.files["out.bin"] };
const plain = await c.run("print(6 * 7)");
await c.close();
report({
  status: ex.status,
  stdout: ex.stdout,
  stderr: ex.stderr,
  text: ex.text,
  events,
  outputs: ex.outputs.map((o) => o.output_type),
  out_is_uint8array: out.data instanceof Uint8Array,
  out_reversed: Array.from(out.data).join(",") === Array.from(binary).reverse().join(","),
  files: Object.keys(ex.files).sort(),
  plain: [plain.status, plain.stdout, plain.error],
});
