// What the JavaScript client (clients/js) adds to raw autobahn.js, in one Node.js process against one node:
//
//     node bench/clients_js.mjs ws://127.0.0.1:8080/ws [--rounds 10] [--per-round 40] [--oneshots 200]
//
// (bench/clients_js.py starts a node and runs this.) The raw side calls autobahn's session directly, the very session
// the client holds (same connection, same kernel, same serializer: msgpack), so the difference is the client's
// layer alone (two connections with a kernel each differ by more than that: placement, pools); calls alternate
// in rounds so both see the same machine.
// - execute round trip: `execute("1+1")` raw vs `kernel.run("1+1")`; and the same with live outputs (raw with
//   receive_progress, the client with onStdout) on `print(1)`;
// - one-shot throughput: `cell.execute` raw vs `client.run`, 8 at a time.
// Prints one JSON object.
import { createRequire } from "node:module";
import { connect } from "../clients/js/src/cellclient.js";

const require = createRequire(new URL("../clients/js/package.json", import.meta.url));
const autobahn = require("autobahn");

const args = process.argv.slice(2);
const url = args[0];
function option(name, fallback) {
  const i = args.indexOf("--" + name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const ROUNDS = option("rounds", 10);
const PER_ROUND = option("per-round", 40);
const ONESHOTS = option("oneshots", 200);
const CONCURRENCY = 8;

function rawCall(session, uri, args, kwargs, progress) {
  return new Promise((resolve, reject) => {
    session.call(uri, args, kwargs, progress ? { receive_progress: true } : {}).then(resolve, reject, progress);
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const ms = (x) => Math.round(x * 1000) / 1000;

async function timed(fn, n, into) {
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    into.push(performance.now() - t0);
  }
}

const client = await connect(url, { autobahn });
const kernel = await client.kernel();
const raw = { session: client._session }; // autobahn's own Session object
const rawExecute = "cell.kernel." + kernel.id + ".execute";

const cases = {
  execute: {
    raw: () => rawCall(raw.session, rawExecute, ["1+1"], {}),
    client: () => kernel.run("1+1"),
  },
  execute_live: {
    raw: () => rawCall(raw.session, rawExecute, ["print(1)"], {}, () => {}),
    client: () => kernel.run("print(1)", { onStdout: () => {} }),
  },
};
const samples = {};
for (const [name, sides] of Object.entries(cases)) {
  samples[name] = { raw: [], client: [] };
  await timed(sides.raw, 10, []); // warm both paths (JIT, the kernel's first executes)
  await timed(sides.client, 10, []);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ["client", "raw"] : ["raw", "client"];
    for (const side of order) {
      await timed(sides[side], PER_ROUND, samples[name][side]);
    }
  }
}

async function throughput(one, n) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        next += 1;
        await one();
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}
const oneshot = { raw: [], client: [] };
await throughput(() => rawCall(raw.session, "cell.execute", ["1+1"], {}), 16); // warm
await throughput(() => client.run("1+1"), 16);
for (let round = 0; round < 4; round++) {
  const order = round % 2 ? ["client", "raw"] : ["raw", "client"];
  for (const side of order) {
    const fn = side === "raw" ? () => rawCall(raw.session, "cell.execute", ["1+1"], {}) : () => client.run("1+1");
    oneshot[side].push(await throughput(fn, Math.ceil(ONESHOTS / 4)));
  }
}

await client.close();

const report = { rounds: ROUNDS, per_round: PER_ROUND, node: process.version };
for (const [name, s] of Object.entries(samples)) {
  report[name] = {
    raw_p50_ms: ms(median(s.raw)),
    client_p50_ms: ms(median(s.client)),
    raw_mean_ms: ms(mean(s.raw)),
    client_mean_ms: ms(mean(s.client)),
    added_p50: Math.round((median(s.client) / median(s.raw) - 1) * 1000) / 1000,
    added_mean: Math.round((mean(s.client) / mean(s.raw) - 1) * 1000) / 1000,
  };
}
const rawRate = oneshot.raw.reduce((a, b) => a + b) / oneshot.raw.length;
const clientRate = oneshot.client.reduce((a, b) => a + b) / oneshot.client.length;
report.oneshot_throughput = {
  concurrency: CONCURRENCY,
  raw_per_s: Math.round(rawRate * 10) / 10,
  client_per_s: Math.round(clientRate * 10) / 10,
  lost: Math.round((1 - clientRate / rawRate) * 1000) / 1000,
};
console.log(JSON.stringify(report));
process.exit(0);
