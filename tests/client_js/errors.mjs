// The node's errors as classes, and what a stranger tries through the client: node errors.mjs URL SERVICE_SECRET
import { connect, errors, failure, report } from "./common.mjs";

const [url, secret] = process.argv.slice(2);
const c = await connect(url);
const k = await c.kernel();
const out = {};
out.unknown_language = await failure(c.run("1", { language: "cobol" }), errors);
out.too_large = await failure(c.run("x = 1\n" + "#".repeat(300_000)), errors);
out.not_code = await failure(k.run(12345), errors);
out.traversal = await failure(k.files.read("../../etc/passwd"), errors);
out.absolute = await failure(k.files.write("/tmp/evil", "x"), errors);
out.long_tag = await failure(k.run("1", { tag: "t".repeat(129) }), errors);
out.unknown_execution = await failure(k.attach(424242), errors);
out.bad_execution = await failure(k.attach({ not: "a number" }), errors);
// another connection knows the kernel's id but not its token: it gets nothing of it
const stranger = await connect(url);
out.wrong_token = await failure(stranger.resume(k.id, "0".repeat(32)), errors);
out.made_up_kernel = await failure(stranger.resume("f".repeat(32), k.resumeToken), errors);
out.strangers_call = await failure(stranger.call("cell.kernel." + k.id + ".execute", ["print(1)"]), errors);
// the session's kernel cap (4 by default): the fifth start is refused
const more = [];
out.capacity = null;
for (let i = 0; i < 6 && !out.capacity; i++) {
  try {
    more.push(await stranger.kernel());
  } catch (e) {
    out.capacity = { ...(await failure(Promise.reject(e), errors)), started: more.length };
  }
}
await stranger.close();
// a callback that throws: the run ends, then rejects with the callback's error; the kernel goes on
out.callback = await failure(
  k.run("print('a')", {
    onStdout: () => {
      throw new TypeError("the caller's bug");
    },
  }),
  errors,
);
out.after_callback = (await k.run("print('still here')")).stdout;
// a kernel that dies mid-run
out.died = await failure(k.run("import os\nprint('bye', flush=True)\nos._exit(3)"), errors);
await c.close();
out.after_close = await failure(c.run("1"), errors);
// credentials: a wrong secret is refused at connect; the service's own is let in
out.wrong_secret = await failure(connect(url, { credential: { authid: "service", secret: "not-the-secret" } }), errors);
out.unknown_principal = await failure(connect(url, { credential: { authid: "mallory", secret: "x" } }), errors);
const service = await connect(url, { credential: { authid: "service", secret } });
out.service_run = (await service.run("print('as a service')")).stdout;
await service.close();
out.unreachable = await failure(connect("ws://127.0.0.1:9/ws"), errors);
report(out);
