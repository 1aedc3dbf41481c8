// A TCP relay in the test's process between the client and the node: cut() drops every connection (the node sees
// the sockets close, as when a network drops); hold(true) turns new connections away until hold(false).
import net from "node:net";

export async function relayTo(url) {
  const target = new URL(url);
  const sockets = new Set();
  let holding = false;
  const server = net.createServer((client) => {
    if (holding) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: "ws://127.0.0.1:" + server.address().port + "/ws",
    cut() {
      for (const s of sockets) {
        s.destroy();
      }
    },
    hold(on) {
      holding = on;
    },
    close() {
      server.close();
    },
  };
}
