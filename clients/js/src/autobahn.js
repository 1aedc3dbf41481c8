/**
 * Where the client gets autobahn.js, the WAMP library it hides.
 *
 * In order: the module the caller hands over (`connect(url, {autobahn})`); a global `autobahn` (a page that
 * loaded autobahn-browser's script, as the node's own pages do); in a browser, the node's copy of that script,
 * next to this module (`/node_modules/autobahn-browser/autobahn.min.js` when the node serves this module at
 * `/client/`); in Node.js, the npm package `autobahn` (a dependency of clients/js/package.json).
 */

const BROWSER_BUILD = "../node_modules/autobahn-browser/autobahn.min.js";

let loading = null;

/** autobahn's warnings about the connection's life, which the client reports as its own events instead */
const LIFECYCLE = /^(connection closed|auto-reconnect|giving up trying to auto-reconnect)/;

/**
 * Keep autobahn from writing a warning to the console at every close and retry (a normal close included): the
 * client tells its caller through `on("disconnected" | "reconnected" | "closed")`. Other warnings pass.
 */
function quieted(autobahn) {
  const log = autobahn && autobahn.log;
  if (log && typeof log.warn === "function" && !log.warn.cellclient) {
    const warn = log.warn;
    log.warn = function (first, ...rest) {
      if (typeof first === "string" && LIFECYCLE.test(first)) {
        return;
      }
      warn.call(this, first, ...rest);
    };
    log.warn.cellclient = true;
  }
  return autobahn;
}

function loadScript(url) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.async = true;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error("could not load autobahn.js from " + url));
    document.head.appendChild(script);
  });
}

/** autobahn's module object (a Promise of it). */
export async function loadAutobahn(given) {
  return quieted(await find(given));
}

function find(given) {
  if (given) {
    return Promise.resolve(given);
  }
  if (globalThis.autobahn) {
    return Promise.resolve(globalThis.autobahn);
  }
  if (!loading) {
    if (typeof document !== "undefined") {
      const url = new URL(BROWSER_BUILD, import.meta.url).href;
      loading = loadScript(url).then(() => globalThis.autobahn);
    } else {
      loading = import("autobahn").then((module) => module.default || module);
    }
    loading.catch(() => {
      loading = null;
    });
  }
  return loading;
}
