/*
 * Live Jupyter widgets in cellserver cells: @jupyter-widgets/html-manager (what Voila and thebe build on), with
 * its comms carried over WAMP: messages to the kernel through cell.kernel.<id>.comm, messages from it on the
 * kernel's iopub topic.  Built into web/widgets.js (a global CellWidgets) by `npm run build` (esbuild).
 */
import { HTMLManager } from "@jupyter-widgets/html-manager/lib/htmlmanager";
import { HardenedClasses, checkModule, keepErrorsAsText, untrustedRenderMime } from "./untrusted";
import "@jupyter-widgets/controls/css/widgets-base.css";
import "@jupyter-widgets/html-manager/css/output.css";

export const WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json";
export const WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json";
const OUTPUT_TYPES = new Set(["stream", "display_data", "execute_result", "error", "update_display_data"]);

function asDataViews(buffers) {
  return (buffers || []).map((b) => (b instanceof DataView ? b : new DataView(b.buffer || b, b.byteOffset || 0, b.byteLength)));
}

function asBytes(buffers) {
  return (buffers || []).map((b) => {
    if (b instanceof Uint8Array) return b;
    if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    return new Uint8Array(b);
  });
}

/** A message as the widget libraries expect it (jupyterlab services' shape): buffers as DataViews. */
function servicesMessage(msg) {
  return {
    header: msg.header,
    parent_header: msg.parent_header || {},
    metadata: msg.metadata || {},
    content: msg.content,
    buffers: asDataViews(msg.buffers),
    channel: "iopub",
  };
}

/** One comm over WAMP: what @jupyter-widgets/base calls an IClassicComm. */
class WampComm {
  constructor(manager, comm_id, target_name) {
    this._manager = manager;
    this.comm_id = comm_id;
    this.target_name = target_name;
    this._onMsg = null;
    this._onClose = null;
  }
  open(data, callbacks, metadata, buffers) {
    return this._send("comm_open", { comm_id: this.comm_id, target_name: this.target_name, data: data || {} }, callbacks, metadata, buffers);
  }
  send(data, callbacks, metadata, buffers) {
    return this._send("comm_msg", { comm_id: this.comm_id, data: data || {} }, callbacks, metadata, buffers);
  }
  close(data, callbacks, metadata, buffers) {
    this._manager._comms.delete(this.comm_id);
    return this._send("comm_close", { comm_id: this.comm_id, data: data || {} }, callbacks, metadata, buffers);
  }
  on_msg(fn) { this._onMsg = fn; }
  on_close(fn) { this._onClose = fn; }
  _send(msgType, content, callbacks, metadata, buffers) {
    const manager = this._manager;
    manager._kernel.comm(msgType, content, metadata || {}, asBytes(buffers)).then(
      (reply) => { if (reply && reply.msg_id && callbacks) manager._callbacks.set(reply.msg_id, callbacks); },
      (err) => manager._onError(err)
    );
    return this.comm_id;
  }
  _receive(msg) { if (this._onMsg) this._onMsg(servicesMessage(msg)); }
  _closed(msg) { if (this._onClose) this._onClose(servicesMessage(msg)); }
}

/**
 * The widget manager of one kernel.
 *
 * kernel: {comm(msgType, content, metadata, buffers) -> Promise<{msg_id}>, commInfo(targetName) -> Promise<{id: {target_name}}>}
 * options.sanitize: the page's sanitizer (web/sanitize.js; by default the one it put on window); what the kernel
 * sends as HTML goes through it (widgets/untrusted.js).
 */
export class CellWidgetManager extends HTMLManager {
  constructor(kernel, options) {
    super(options || {});
    const sanitize = (options && options.sanitize) || globalThis.CELLSERVER_SANITIZE;
    if (!sanitize) throw new Error("cellserver widgets need the page's sanitizer (sanitize.js)");
    this._sanitize = sanitize;
    this._hardened = new HardenedClasses(sanitize);
    this.renderMime = untrustedRenderMime(this.renderMime, sanitize);
    keepErrorsAsText(sanitize);
    this._kernel = kernel;
    this._comms = new Map();
    this._callbacks = new Map();  // msg_id of a message we sent -> its callbacks (iopub status, for throttling)
    this._captured = [];  // outputs an Output widget took, in order: the cell does not show them again
    this._onError = (options && options.onError) || ((err) => console.error("cellserver widgets:", err));
  }
  _create_comm(target_name, model_id, data, metadata, buffers) {
    const comm = new WampComm(this, model_id, target_name);
    this._comms.set(model_id, comm);
    if (data !== undefined) comm.open(data, undefined, metadata, buffers);
    return Promise.resolve(comm);
  }
  _get_comm_info() {
    return this._kernel.commInfo("jupyter.widget");
  }
  /** A widget class, hardened where it would write the kernel's HTML into the page; ipywidgets 7's refused. */
  async loadClass(className, moduleName, moduleVersion) {
    checkModule(moduleName, moduleVersion);
    const cls = await super.loadClass(className, moduleName, moduleVersion);
    return this._hardened.get(cls, className, moduleName);
  }
  /** HTML descriptions (description_allow_html): after ipywidgets' own sanitize-html, the page's one sanitizer too. */
  inline_sanitize(source) {
    return this._sanitize.html(super.inline_sanitize(source));
  }
  /** The Output widgets capturing what request C{msgId} prints (their msg_id is that request's). */
  _capturing(msgId) {
    const models = [];
    if (!msgId) return models;
    for (const promise of Object.values(this._models || {})) {
      // _models holds promises; a resolved model is cached on the promise by _settled below
      const model = promise && promise._cellModel;
      if (model && model.get("_model_name") === "OutputModel" && model.get("msg_id") === msgId) models.push(model);
    }
    return models;
  }
  register_model(model_id, modelPromise) {
    super.register_model(model_id, modelPromise);
    modelPromise.then((model) => { modelPromise._cellModel = model; }, () => {});
  }
  /**
   * Take one iopub message of the kernel; true if a widget consumed it (an output an Output widget captured).
   */
  handleMessage(msg) {
    const type = msg.header && msg.header.msg_type;
    const content = msg.content || {};
    if (type === "comm_open") {
      const comm = new WampComm(this, content.comm_id, content.target_name);
      this._comms.set(content.comm_id, comm);
      if (content.target_name === this.comm_target_name) {
        this.handle_comm_open(comm, servicesMessage(msg)).catch(this._onError);
      }
      return true;
    }
    if (type === "comm_msg") {
      const comm = this._comms.get(content.comm_id);
      if (comm) comm._receive(msg);
      return true;
    }
    if (type === "comm_close") {
      const comm = this._comms.get(content.comm_id);
      if (comm) { this._comms.delete(content.comm_id); comm._closed(msg); }
      return true;
    }
    const parentId = msg.parent_header && msg.parent_header.msg_id;
    if (type === "status" && content.execution_state === "idle" && this._callbacks.has(parentId)) {
      const callbacks = this._callbacks.get(parentId);
      this._callbacks.delete(parentId);
      if (callbacks.iopub && callbacks.iopub.status) callbacks.iopub.status(servicesMessage(msg));
      return false;
    }
    if (type === "clear_output" || OUTPUT_TYPES.has(type)) {
      const models = this._capturing(parentId);
      if (!models.length) return false;
      for (const model of models) {
        if (type === "clear_output") model.clear_output(!!content.wait);
        else model.outputs.add(Object.assign({ output_type: type === "update_display_data" ? "display_data" : type }, content));
      }
      this._captured.push(type);
      return true;
    }
    return false;
  }
  /** The cell got an output of its execution: false if an Output widget already took it (shown there, not twice). */
  showInCell(output) {
    const type = output.output_type;
    const i = this._captured.indexOf(type);
    if (i === -1) return true;
    this._captured.splice(i, 1);
    return false;
  }
  /** Show the view of widget model C{modelId} in C{element}. */
  async render(modelId, element) {
    const model = await this.get_model(modelId);
    const view = await this.create_view(model);
    await this.display_view(view, element);
    return view;
  }
  /** A one-shot's widgets: the state saved beside its outputs, shown as a static snapshot. */
  async loadState(state) {
    await this.set_state(state);
  }
  /** After the page came back to a kernel: the kernel's widgets, fetched again. */
  async restore() {
    await this._loadFromKernel();
  }
}

export function createManager(kernel, options) {
  return new CellWidgetManager(kernel, options);
}
