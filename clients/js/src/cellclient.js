/**
 * cellserver's JavaScript client: run code on a node without learning WAMP (browsers and Node.js).
 *
 *     import { connect, errors } from "./cellclient.js";
 *     const c = await connect("ws://127.0.0.1:8080/ws");
 *     const ex = await c.run("print(6 * 7)", { onStdout: (text) => console.log(text) });
 *     const k = await c.kernel();
 *     await k.run("x = 1");
 *     (await k.run("x + 1")).text;  // "2"
 *     await c.close();
 *
 * The connection comes back by itself after a drop: kernels are resumed (`cell.kernel.resume`) and runs in
 * flight re-attached to the node's record of them (`cell.kernel.<id>.attach`), so their callbacks get every
 * output once, in order. Documentation: docs/clients.md, "JavaScript".
 */

import { loadAutobahn } from "./autobahn.js";
import * as errors from "./errors.js";
import { ConnectionLost, fromWamp } from "./errors.js";
import { Execution, asBytes, callbacksOf } from "./execution.js";
import { Kernel } from "./kernel.js";

export { errors, Execution, Kernel };
export {
  CellError,
  InvalidArgument,
  NotFound,
  Capacity,
  TooLarge,
  KernelDied,
  Timeout,
  Unavailable,
  ConnectionLost,
  NotAuthorized,
  Cancelled,
} from "./errors.js";

export const URIS = {
  KERNEL_START: "cell.kernel.start",
  KERNEL_RESUME: "cell.kernel.resume",
  EXECUTE_ONCE: "cell.execute",
  STATUS: "cell.status",
  KERNELSPECS: "cell.kernelspecs",
};

const PYTHON_NAMES = new Set(["python", "python3"]);

function deferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => {
    d.resolve = resolve;
    d.reject = reject;
  });
  return d;
}

/**
 * Connect to a node: a Promise of a Client once the first session is open.
 *
 * Options: `credential: {authid, secret}` (WAMP-CRA, role `service`; anonymous without it), `realm` ("cell"),
 * `reconnectFor` (seconds to keep trying after a drop before failing what waits: 60, the node's resume grace),
 * `autobahn` (the autobahn module to use; found by itself otherwise).
 */
export async function connect(url, options = {}) {
  const autobahn = await loadAutobahn(options.autobahn);
  const client = new Client(autobahn, url, options);
  await client._opened.promise;
  return client;
}

/** A connection to a node (see connect); holds the kernels it started. */
export class Client {
  constructor(autobahn, url, options = {}) {
    this.url = url;
    this._autobahn = autobahn;
    this._session = null;
    this._gen = 0; // bumped at every drop: answers of an older connection are not delivered
    this._waiters = [];
    this._calls = new Set();
    this._kernels = new Set();
    this._listeners = new Map();
    this._specs = null;
    this._everOpened = false;
    this._closing = false;
    this._closed = null; // the error what waits now fails with, once closed
    this._lostAt = null;
    this._reconnectFor = (options.reconnectFor ?? 60) * 1000;
    this._opened = deferred();
    this._ended = deferred();
    this._opened.promise.catch(() => {});
    const settings = {
      url,
      realm: options.realm || "cell",
      // msgpack: file bytes travel as binary (autobahn.js's JSON has no binary encoding)
      serializers: [new autobahn.serializer.MsgpackSerializer()],
      retry_if_unreachable: false, // the first connect fails at once; after a drop, retry (see _onClose)
      max_retries: -1,
      initial_retry_delay: 0.1,
      max_retry_delay: 2,
      retry_delay_growth: 1.5,
      retry_delay_jitter: 0.1,
    };
    const credential = options.credential;
    if (credential) {
      settings.authmethods = ["wampcra"];
      settings.authid = credential.authid;
      settings.onchallenge = (session, method, extra) => {
        if (method !== "wampcra") {
          throw new Error("the node asked for " + method + "; this client speaks WAMP-CRA");
        }
        let key = credential.secret;
        if (extra.salt) {
          key = autobahn.auth_cra.derive_key(key, extra.salt, extra.iterations, extra.keylen);
        }
        return autobahn.auth_cra.sign(key, extra.challenge);
      };
    }
    this._connection = new autobahn.Connection(settings);
    this._connection.onopen = (session) => this._onOpen(session);
    this._connection.onclose = (reason, details) => this._onClose(reason, details || {});
    this._connection.open();
  }

  /** Listen to the connection: "disconnected", "reconnected" (kernels resumed), "closed" (with the error). */
  on(event, fn) {
    if (!this._listeners.has(event)) {
      this._listeners.set(event, []);
    }
    this._listeners.get(event).push(fn);
    return this;
  }

  _emit(event, value) {
    for (const fn of this._listeners.get(event) || []) {
      try {
        fn(value);
      } catch (e) {
        console.error("cellclient: a listener of", event, "threw", e);
      }
    }
  }

  /** Whether a session is open now. */
  get connected() {
    return this._session !== null;
  }

  _onOpen(session) {
    if (this._closing) {
      this._connection.close();
      return;
    }
    this._session = session;
    this._lostAt = null;
    const waiters = this._waiters;
    this._waiters = [];
    waiters.forEach((w) => w.resolve(session));
    if (!this._everOpened) {
      this._everOpened = true;
      this._opened.resolve(this);
      return;
    }
    Promise.allSettled([...this._kernels].map((k) => k._resume(session))).then(() => {
      if (this._session === session) {
        this._emit("reconnected");
      }
    });
  }

  _onClose(reason, details) {
    const wasOpen = this._session !== null; // false for a retry that failed
    this._session = null;
    this._gen += 1;
    if (!this._everOpened) {
      const error = details.reason
        ? fromWamp({ error: details.reason, args: [details.message || "the node refused the session: " + details.reason] })
        : new ConnectionLost("could not connect to " + this.url + " (" + reason + ")");
      this._opened.reject(error);
      this._end(error);
      return true;
    }
    if (this._closing) {
      this._end(new ConnectionLost("the client was closed"));
      return true;
    }
    this._lostAt = this._lostAt ?? Date.now();
    const refused = details.reason && details.reason !== "wamp.close.normal";
    if (refused || !details.will_retry || Date.now() - this._lostAt > this._reconnectFor) {
      // the node ended the session (e.g. cell.error.capacity), or it did not come back in time
      const error = refused
        ? fromWamp({ error: details.reason, args: [details.message || "the node closed the session: " + details.reason] })
        : new ConnectionLost("the connection to " + this.url + " was lost and did not come back");
      this._end(error);
      return true;
    }
    if (wasOpen) {
      for (const k of this._kernels) {
        k._detach();
      }
      for (const call of [...this._calls]) {
        call.lost();
      }
      this._emit("disconnected", reason);
    }
    return false;
  }

  _end(error) {
    if (this._closed) {
      return;
    }
    this._closed = error;
    this._waiters.forEach((w) => w.reject(error));
    this._waiters = [];
    for (const call of [...this._calls]) {
      call.fail(error);
    }
    for (const k of this._kernels) {
      k._end(error);
    }
    this._emit("closed", error);
    this._ended.resolve();
  }

  /** The open session, now or once the connection is back. */
  _sessionNow() {
    if (this._closed) {
      return Promise.reject(this._closed);
    }
    if (this._session) {
      return Promise.resolve(this._session);
    }
    const d = deferred();
    this._waiters.push(d);
    return d.promise;
  }

  /**
   * Call a procedure: a Promise of its result, a CellError for the node's errors. `onProgress` gets progressive
   * results; `retry` sends the call again when the connection drops before its answer (for reads only);
   * `sessionFor` gives the session to call on (a kernel's, once it is resumed there).
   */
  _call(uri, args = [], kwargs = {}, { onProgress = null, retry = false, sessionFor = null } = {}) {
    return new Promise((resolve, reject) => {
      const call = {};
      const done = () => this._calls.delete(call);
      call.fail = (error) => {
        done();
        reject(error);
      };
      call.lost = () => {
        if (retry) {
          attempt();
        } else {
          call.fail(new ConnectionLost("the connection dropped before " + uri + " answered; it may or may not have run"));
        }
      };
      const attempt = async () => {
        let session;
        try {
          session = await (sessionFor ? sessionFor() : this._sessionNow());
        } catch (e) {
          call.fail(e);
          return;
        }
        const gen = this._gen;
        let d;
        try {
          d = session.call(uri, args, kwargs, onProgress ? { receive_progress: true } : {});
        } catch (e) {
          call.fail(fromWamp(e));
          return;
        }
        d.then(
          (value) => gen === this._gen && (done(), resolve(value)),
          (e) => gen === this._gen && call.fail(fromWamp(e)),
          (value) => gen === this._gen && onProgress && onProgress(value),
        );
      };
      this._calls.add(call);
      attempt();
    });
  }

  /**
   * Call any procedure of the node's API (docs/api.md) with this client's reconnects and errors: e.g.
   * `call("cell.permalink.save", [code])`. `options.onProgress` gets progressive results.
   */
  call(uri, args = [], kwargs = {}, options = {}) {
    return this._call(uri, args, kwargs, { onProgress: options.onProgress || null });
  }

  /** The languages the node offers: `{default, kernelspecs: {name: {name, spec, resources}}}` (asked once). */
  kernelspecs() {
    if (!this._specs) {
      this._specs = this._call(URIS.KERNELSPECS, [], {}, { retry: true });
      this._specs.catch(() => {
        this._specs = null;
      });
    }
    return this._specs;
  }

  /** The node's workers and kernels (`cell.status`). */
  status() {
    return this._call(URIS.STATUS, [], {}, { retry: true });
  }

  /** The kernelspec name for `language` (a kernelspec's name or its language; null for Python, the default). */
  async _kernelName(options) {
    if (options.kernelName) {
      return options.kernelName;
    }
    const language = options.language;
    if (language === undefined || language === null || PYTHON_NAMES.has(String(language).toLowerCase())) {
      return null;
    }
    const wanted = String(language).toLowerCase();
    const specs = (await this.kernelspecs()).kernelspecs || {};
    if (specs[language]) {
      return language;
    }
    const match = Object.keys(specs).find(
      (name) => name.toLowerCase() === wanted || ((specs[name].spec || {}).language || "").toLowerCase() === wanted,
    );
    return match || String(language); // the node's not_found names the languages it offers
  }

  /**
   * Run `code` once in a fresh process (`cell.execute`): a Promise of an Execution.
   *
   * Options: `language`, `files` ({path: Uint8Array | string}, written first), `returnFiles` (the files the run
   * made, with their bytes), `timeout` (seconds), `userExpressions`, `stopOnError`; callbacks `onStdout(text)`,
   * `onStderr(text)`, `onDisplay(output)`, `onError(output)`, `onOutput(item)`, called as outputs come, in order.
   */
  async run(code, options = {}) {
    const kwargs = {};
    const kernelName = await this._kernelName(options);
    if (kernelName) {
      kwargs.kernel_name = kernelName;
    }
    if (options.timeout !== undefined) {
      kwargs.timeout = options.timeout;
    }
    if (options.userExpressions) {
      kwargs.user_expressions = options.userExpressions;
    }
    if (options.stopOnError !== undefined) {
      kwargs.stop_on_error = options.stopOnError;
    }
    if (options.files) {
      kwargs.files = Object.fromEntries(Object.entries(options.files).map(([path, data]) => [path, asBytes(data)]));
    }
    if (options.returnFiles) {
      kwargs.return_files = true;
    }
    const callbacks = callbacksOf(options);
    let callbackError = null;
    const onProgress = callbacks.any
      ? (item) => {
          try {
            callbacks.deliver(item);
          } catch (e) {
            callbackError = callbackError || e;
          }
        }
      : null;
    const raw = await this._call(URIS.EXECUTE_ONCE, [code], kwargs, { onProgress });
    if (callbackError) {
      throw callbackError;
    }
    return new Execution(raw);
  }

  /** A kernel of your own (`cell.kernel.start`): options `language` or `kernelName`. */
  async kernel(options = {}) {
    const kernelName = await this._kernelName(options);
    const info = await this._call(URIS.KERNEL_START, [], kernelName ? { kernel_name: kernelName } : {});
    const kernel = new Kernel(this, info, this._session);
    this._kernels.add(kernel);
    return kernel;
  }

  /**
   * Take over a kernel started elsewhere (another connection, a page before its reload), given its id and
   * `resume_token` (`kernel.id`, `kernel.resumeToken`): a Promise of a Kernel.
   */
  async resume(kernelId, resumeToken) {
    const info = await this._call(URIS.KERNEL_RESUME, [kernelId, resumeToken]);
    const kernel = new Kernel(this, { ...info, resume_token: resumeToken }, this._session);
    this._kernels.add(kernel);
    return kernel;
  }

  /**
   * Leave: shuts down this client's kernels first (`{keepKernels: true}` leaves them for `resume` within the
   * node's grace, 60 s), then closes the connection.
   */
  async close({ keepKernels = false } = {}) {
    if (this._closed) {
      return;
    }
    if (!keepKernels && this._session) {
      await Promise.allSettled([...this._kernels].map((k) => k.shutdown()));
    }
    this._closing = true;
    const open = this._session !== null;
    try {
      this._connection.close();
    } catch (e) {
      // closed already, between retries
    }
    if (!open) {
      this._end(new ConnectionLost("the client was closed")); // a retry that opens now is closed at once
    }
    await this._ended.promise;
  }
}

if (typeof Symbol.asyncDispose === "symbol") {
  Client.prototype[Symbol.asyncDispose] = function () {
    return this.close();
  };
}
