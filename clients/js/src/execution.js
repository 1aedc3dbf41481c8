/**
 * One run's outcome (Execution) and the handing of its live outputs to the caller's callbacks.
 */

/** Bytes as a Uint8Array (msgpack gives Node.js Buffers, or the browser build's Buffer polyfill). */
export function asBytes(value) {
  if (value instanceof Uint8Array && value.constructor === Uint8Array) {
    return value;
  }
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value instanceof ArrayBuffer) {
    return new Uint8Array(value);
  }
  if (typeof value === "string") {
    return new TextEncoder().encode(value);
  }
  throw new TypeError("file data must be bytes (Uint8Array, ArrayBuffer, Buffer) or a string");
}

function text(value) {
  return Array.isArray(value) ? value.join("") : value || "";
}

/**
 * What a run gave: the node's execution result, read.
 *
 * - `status`: "ok", "error", "aborted" or "timeout";
 * - `outputs`: nbformat v4 outputs in order (streams merged, clear_output applied, as a notebook shows them);
 * - `stdout`, `stderr`: the text of those stream outputs;
 * - `result`: the `data` of the execute_result (`{"text/plain": ...}`), or null;
 * - `error`: `{ename, evalue, traceback}` when the code raised, else null;
 * - `files`: the files the run made or changed, `{name: Uint8Array}` when a one-shot was asked for their bytes,
 *   `{name: null}` otherwise (sizes and times are in `raw.files`);
 * - `execution`, `tag`: the kernel's number for the run and the caller's tag (kernel runs); `executionCount`;
 * - `raw`: the result as the node sent it.
 */
export class Execution {
  constructor(raw) {
    this.raw = raw;
    this.status = raw.status;
    this.executionCount = raw.execution_count ?? null;
    this.execution = raw.execution ?? null;
    this.tag = raw.tag ?? null;
    this.outputs = raw.outputs || [];
    this.stdout = "";
    this.stderr = "";
    this.result = null;
    for (const output of this.outputs) {
      if (output.output_type === "stream") {
        if (output.name === "stderr") {
          this.stderr += text(output.text);
        } else {
          this.stdout += text(output.text);
        }
      } else if (output.output_type === "execute_result") {
        this.result = output.data || {};
      }
    }
    this.error =
      raw.status === "error" ? { ename: raw.ename, evalue: raw.evalue, traceback: raw.traceback || [] } : null;
    this.files = {};
    for (const f of raw.files || []) {
      this.files[f.name] = f.data === undefined || f.data === null ? null : asBytes(f.data);
    }
    this.userExpressions = raw.user_expressions || null;
    this.widgets = raw.widgets || null;
    this.kernelRestarted = !!raw.kernel_restarted;
  }

  /** The text of the result (`text/plain`), or null. */
  get text() {
    return this.result ? text(this.result["text/plain"]) || null : null;
  }
}

/** The callbacks of a run, from its options; `any` is false when the caller gave none (no live outputs needed). */
export function callbacksOf(options) {
  const { onStdout, onStderr, onDisplay, onError, onOutput } = options;
  const any = !!(onStdout || onStderr || onDisplay || onError || onOutput);
  return {
    any,
    /** Hand one live output (a progressive result of execute or attach) to the callbacks it concerns. */
    deliver(output) {
      switch (output && output.output_type) {
        case "stream":
          if (output.name === "stderr") {
            onStderr && onStderr(text(output.text), output);
          } else {
            onStdout && onStdout(text(output.text), output);
          }
          break;
        case "display_data":
        case "execute_result":
        case "update_display_data":
          onDisplay && onDisplay(output);
          break;
        case "error":
          onError && onError(output);
          break;
        default:
          break;
      }
      onOutput && onOutput(output);
    },
  };
}
