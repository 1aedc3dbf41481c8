/**
 * A kernel of one's own (Kernel), its files (Files), and its runs, which outlive a dropped connection (KernelRun).
 */

import { ConnectionLost, fromWamp } from "./errors.js";
import { Execution, asBytes, callbacksOf } from "./execution.js";

/** files.put chunks: well under the node's message limit (16 MiB) */
const CHUNK_BYTES = 1 << 20;

function deferred() {
  const d = { settled: false };
  d.promise = new Promise((resolve, reject) => {
    d.resolve = (v) => {
      d.settled = true;
      resolve(v);
    };
    d.reject = (e) => {
      d.settled = true;
      reject(e);
    };
  });
  d.promise.catch(() => {});
  return d;
}

function randomTag() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return "js-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * One run of code in a kernel (execute, or attach to an execution the node keeps), followed to its end across
 * connection drops: after a drop it re-attaches with `since` = the outputs it already handed on, so the callbacks
 * get every output once, in order. A run is tagged (a random tag unless the caller gives one) so that it can be
 * found again even when the drop came before its first output.
 */
class KernelRun {
  constructor(kernel, options, { code = null, target = null, since = 0 } = {}) {
    this.kernel = kernel;
    this.client = kernel.client;
    this.options = options;
    this.code = code;
    this.tag = code !== null ? (options.tag ?? randomTag()) : null;
    this.target = code !== null ? this.tag : target;
    this.seen = since;
    this.callbacks = callbacksOf(options);
    this.live = this.callbacks.any || !!options.onInput; // progressive results wanted
    this.callbackError = null;
    this.done = deferred();
  }

  start() {
    this.kernel._runs.add(this);
    this._go(this.code !== null ? "execute" : "attach");
    return this.done.promise;
  }

  async _go(mode) {
    this.mode = mode;
    let session;
    try {
      session = await this.kernel._sessionReady();
    } catch (e) {
      this._fail(e);
      return;
    }
    const gen = this.client._gen;
    let call;
    try {
      call = session.call(this.kernel._uri(mode), ...this._arguments(mode), this.live ? { receive_progress: true } : {});
    } catch (e) {
      this._fail(fromWamp(e));
      return;
    }
    const current = () => gen === this.client._gen && !this.done.settled;
    call.then(
      (result) => current() && this._end(result),
      (e) => current() && this._error(fromWamp(e), mode),
      (item) => current() && this._item(item, mode),
    );
  }

  _arguments(mode) {
    if (mode === "attach") {
      return [[], { execution: this.target, since: this.seen }];
    }
    const o = this.options;
    const kwargs = { tag: this.tag };
    if (o.timeout !== undefined) kwargs.timeout = o.timeout;
    if (o.userExpressions) kwargs.user_expressions = o.userExpressions;
    if (o.stopOnError !== undefined) kwargs.stop_on_error = o.stopOnError;
    if (o.onInput || o.allowStdin) kwargs.allow_stdin = true;
    return [[this.code], kwargs];
  }

  _item(item, mode) {
    let output = item;
    if (mode === "attach") {
      if (!item || typeof item.next !== "number" || item.next <= this.seen) {
        return; // nothing new (a replay never overlaps what was asked; this guards a stray item)
      }
      output = item.output;
      this.seen = item.next;
    } else {
      this.seen += 1; // each progressive item of execute is one recorded output
    }
    try {
      if (output && output.output_type === "input_request" && this.options.onInput) {
        this._answer(output);
      } else {
        this.callbacks.deliver(output);
      }
    } catch (e) {
      this.callbackError = this.callbackError || e;
    }
  }

  _answer(request) {
    const onInput = this.options.onInput;
    if (!onInput) {
      return;
    }
    Promise.resolve(onInput(request.prompt, !!request.password))
      .then((value) => this.kernel.input(String(value)))
      .catch((e) => {
        this.callbackError = this.callbackError || e;
      });
  }

  /** The connection dropped: follow the run again once the kernel is resumed on the next one. */
  lost() {
    if (!this.done.settled) {
      this._go("attach");
    }
  }

  _error(error, mode) {
    // Not found by its tag right after a drop, before any output: the execute never reached the kernel (a kernel
    // that is gone fails the resume first), so send it now; it cannot run twice.
    if (mode === "attach" && this.code !== null && this.seen === 0 && error.uri === "cell.error.not_found") {
      this._go("execute");
      return;
    }
    this._fail(error);
  }

  _end(result) {
    this.kernel._runs.delete(this);
    if (this.callbackError) {
      this.done.reject(this.callbackError);
    } else {
      this.done.resolve(new Execution(result));
    }
  }

  _fail(error) {
    this.kernel._runs.delete(this);
    this.done.reject(error);
  }
}

/** A kernel's working directory (`cell.kernel.<id>.files.*`); paths are relative to it. */
export class Files {
  constructor(kernel) {
    this.kernel = kernel;
  }

  /** `[{name, size, mtime, type}]` of the directory `path` ("" for the top). */
  list(path = "") {
    return this.kernel._call("files.list", [path], {}, { retry: true });
  }

  /** A file's bytes (a Uint8Array), in chunks however large. */
  async read(path) {
    const chunks = new Map();
    const end = await this.kernel._call("files.get", [path], {}, {
      retry: true,
      onProgress: (chunk) => chunks.set(chunk.offset, asBytes(chunk.data)),
    });
    const data = new Uint8Array(end.size);
    let at = 0;
    for (const offset of [...chunks.keys()].sort((a, b) => a - b)) {
      const bytes = chunks.get(offset);
      if (offset !== at || offset + bytes.length > end.size) {
        throw new ConnectionLost("file " + path + " came in pieces that do not fit; read it again");
      }
      data.set(bytes, offset);
      at = offset + bytes.length;
    }
    if (at !== end.size) {
      throw new ConnectionLost("file " + path + " came short (" + at + " of " + end.size + " bytes); read it again");
    }
    return data;
  }

  /** A file's text (UTF-8). */
  async readText(path) {
    return new TextDecoder().decode(await this.read(path));
  }

  /** Write `data` (a Uint8Array, ArrayBuffer or string) to `path`, replacing it: `{size, sha256}`. */
  async write(path, data) {
    const bytes = asBytes(data);
    for (;;) {
      try {
        let reply = null;
        let offset = 0;
        do {
          const piece = bytes.subarray(offset, offset + CHUNK_BYTES);
          const final = offset + piece.length >= bytes.length;
          reply = await this.kernel._call("files.put", [path, piece], { offset, final });
          offset += piece.length;
        } while (offset < bytes.length);
        return reply;
      } catch (e) {
        // writing from offset 0 replaces the file: a write cut by a drop starts again once the kernel is back
        if (!(e instanceof ConnectionLost) || this.kernel.client._closed) {
          throw e;
        }
      }
    }
  }
}

/** A kernel of one's own: Client.kernel() makes one. */
export class Kernel {
  constructor(client, info, session) {
    this.client = client;
    this.id = info.kernel_id;
    this.name = info.kernel_name || null;
    this.resumeToken = info.resume_token;
    this.iopubTopic = info.iopub || "cell.kernel." + info.kernel_id + ".iopub";
    this.files = new Files(this);
    this._runs = new Set();
    this._subscriptions = []; // [handler, autobahn Subscription or null]
    this._ready = deferred();
    this._ready.resolve(session);
    this._ended = null;
    this._resuming = false;
  }

  _uri(name) {
    return "cell.kernel." + this.id + "." + name;
  }

  /** The session this kernel is bound to, once it is (after a drop: once resumed). */
  async _sessionReady() {
    for (;;) {
      const session = await this._ready.promise;
      if (session === this.client._session) {
        return session;
      }
      if (this._ended) {
        throw this._ended;
      }
      // bound to a session that is gone and not being resumed (a drop that came as the kernel was handed over):
      // resume it on the next one
      const next = await this.client._sessionNow();
      if (this._ready.settled && !this._resuming) {
        this._ready = deferred();
        this._resume(next);
      }
    }
  }

  _detach() {
    if (this._ready.settled && !this._ended) {
      this._ready = deferred();
    }
    for (const run of [...this._runs]) {
      run.lost();
    }
  }

  async _resume(session) {
    if (this._ended) {
      return;
    }
    this._resuming = true;
    try {
      await session.call("cell.kernel.resume", [this.id, this.resumeToken]);
      for (const entry of this._subscriptions) {
        entry[1] = await session.subscribe(this.iopubTopic, (args) => entry[0](args[0]));
      }
    } catch (e) {
      if (this.client._session !== session) {
        return; // dropped again meanwhile: the next session tries again
      }
      const error = fromWamp(e);
      error.message = "kernel " + this.id + " could not be resumed after the connection came back: " + error.message;
      this._end(error);
      return;
    } finally {
      this._resuming = false;
    }
    this._ready.resolve(session);
  }

  _end(error) {
    if (this._ended) {
      return;
    }
    this._ended = error;
    this._ready.reject(error);
    for (const run of [...this._runs]) {
      run._fail(error);
    }
    this.client._kernels.delete(this);
  }

  _call(name, args = [], kwargs = {}, options = {}) {
    return this.client._call(this._uri(name), args, kwargs, { ...options, sessionFor: () => this._sessionReady() });
  }

  /**
   * Run `code` (`execute`): a Promise of an Execution. Options: `timeout` (seconds), `userExpressions`,
   * `stopOnError`, `tag` (a string of yours, ≤ 128 characters, to find the run again with attach); callbacks
   * `onStdout(text)`, `onStderr(text)`, `onDisplay(output)`, `onError(output)`, `onOutput(item)`, and
   * `onInput(prompt, password)` answering `input()` (a string or a Promise of one); or `allowStdin: true` to get
   * the `input_request` items in onOutput and answer them yourself with `input(value)`.
   */
  run(code, options = {}) {
    return new KernelRun(this, options, { code }).start();
  }

  /**
   * Follow an execution the node keeps for this kernel (its number, its tag, or null for the latest), from
   * output `since`: what it printed from there, then the rest live; a Promise of its Execution.
   */
  attach(execution = null, options = {}) {
    return new KernelRun(this, options, { target: execution, since: options.since || 0 }).start();
  }

  /** The executions the node keeps for this kernel: `[{execution, tag, status, outputs}]`, oldest first. */
  executions() {
    return this._call("executions", [], {}, { retry: true });
  }

  /** Interrupt what runs (SIGINT or the kernelspec's interrupt). */
  interrupt() {
    return this._call("interrupt");
  }

  /** A fresh process for this kernel: same id and files, state lost. */
  restart() {
    return this._call("restart");
  }

  /** Completions at `cursorPos` (the kernel's complete_reply: matches, cursor_start, cursor_end). */
  complete(code, cursorPos = code.length) {
    return this._call("complete", [code, cursorPos], {}, { retry: true });
  }

  /** Help at `cursorPos` (the kernel's inspect_reply: found, data). */
  inspect(code, cursorPos = code.length, detailLevel = 0) {
    return this._call("inspect", [code, cursorPos], { detail_level: detailLevel }, { retry: true });
  }

  /** Answer the pending input() of the running execution (runs with onInput do it for you). */
  input(value) {
    return this._call("input", [value]);
  }

  /** Send a comm message (widgets): `{msg_id}`. */
  comm(msgType, content, { metadata = null, buffers = null } = {}) {
    return this._call("comm", [msgType, content], { metadata, buffers });
  }

  /** The kernel's widgets: its open comms, `{comm_id: {target_name}}` (widgets' are `jupyter.widget`). */
  widgets() {
    return this.commInfo();
  }

  /** The kernel's open comms, `{comm_id: {target_name}}`. */
  commInfo(targetName = null) {
    return this._call("comm_info", [], { target_name: targetName }, { retry: true });
  }

  /**
   * Every iopub message of the kernel to `handler(msg)` (kept across reconnects): a Promise of a function that
   * stops it.
   */
  async subscribe(handler) {
    const entry = [handler, null];
    const session = await this._sessionReady();
    entry[1] = await session.subscribe(this.iopubTopic, (args) => handler(args[0]));
    this._subscriptions.push(entry);
    return async () => {
      this._subscriptions = this._subscriptions.filter((e) => e !== entry);
      if (entry[1] && this.client._session) {
        await this.client._session.unsubscribe(entry[1]).catch(() => {});
      }
    };
  }

  /** Shut the kernel down; it is gone afterwards. */
  async shutdown() {
    try {
      await this._call("shutdown");
    } finally {
      this.client._kernels.delete(this);
    }
  }
}
