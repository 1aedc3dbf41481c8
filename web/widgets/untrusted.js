/*
 * Widgets show what a kernel sends, and kernels run strangers' code: every place where @jupyter-widgets would write
 * that into the page as HTML goes through the page's one sanitizer (web/sanitize.js, DOMPurify) instead, and
 * outputs inside Output widgets are rendered as untrusted (no JavaScript, sanitized HTML and Markdown), as
 * JupyterLab renders an untrusted notebook. Without this, widgets.HTML and html-manager's trusted Output widget
 * ran <script> and <img onerror> in the page (issue 19, item 7).
 */
import { ErrorWidgetView } from "@jupyter-widgets/base";
import { RenderedHTML } from "@jupyterlab/rendermime";

/**
 * The major version of each widget module this page serves (ipywidgets 8). html-manager would also load ipywidgets
 * 7's front end when a model asks for 1.x, and that one writes every description into innerHTML as it comes.
 */
const SERVED_MAJOR = { "@jupyter-widgets/base": "2", "@jupyter-widgets/controls": "2" };

/** Refuse a widget module version the page does not serve (the widget then shows as an error view). */
export function checkModule(moduleName, moduleVersion) {
  const served = SERVED_MAJOR[moduleName];
  const major = /^\D*(\d+)/.exec(String(moduleVersion || ""));
  if (served && major && major[1] !== served) {
    throw new Error(`${moduleName} ${moduleVersion} is not served here (ipywidgets 8's front end only)`);
  }
}

/** A view whose update writes the model's value as HTML: the same, sanitized (HTML and HTMLMath). */
function sanitizedView(View, sanitize, typeset) {
  const parentUpdate = Object.getPrototypeOf(View.prototype).update;
  return class extends View {
    update() {
      this.content.innerHTML = sanitize.html(this.model.get("value"));
      if (typeset) this.typeset(this.content);
      return parentUpdate.call(this);
    }
  };
}

/** An Output widget whose outputs are untrusted: html-manager's marks them trusted, so their scripts would run. */
function untrustedOutput(OutputModel) {
  return class extends OutputModel {
    initialize(attributes, options) {
      super.initialize(attributes, options);
      this.outputs.trusted = false;
    }
  };
}

const HARDENED = {
  "@jupyter-widgets/controls": {
    HTMLView: (cls, sanitize) => sanitizedView(cls, sanitize, false),
    HTMLMathView: (cls, sanitize) => sanitizedView(cls, sanitize, true),
  },
  "@jupyter-widgets/output": {
    OutputModel: (cls) => untrustedOutput(cls),
  },
};

/** Hands out the hardened subclass of a widget class that needs one (one per class and sanitizer). */
export class HardenedClasses {
  constructor(sanitize) {
    this._sanitize = sanitize;
    this._made = new Map();
  }
  get(cls, className, moduleName) {
    const harden = (HARDENED[moduleName] || {})[className];
    if (!harden) return cls;
    if (!this._made.has(cls)) this._made.set(cls, harden(cls, this._sanitize));
    return this._made.get(cls);
  }
}

/**
 * HTML in an Output widget as the cell shows it: Sage's typeset math and Sage's 3D viewer in its sandboxed frame
 * (web/sage.js, e.g. show() inside a Sage @interact), anything else as html-manager does, through the sanitizer.
 */
class CellHTML extends RenderedHTML {
  render(model) {
    const sage = globalThis.CELLSERVER_SAGE;
    const node = sage ? sage.render(model.data) : null;
    if (!node) return super.render(model);
    this.node.textContent = "";
    this.node.appendChild(node);
    return Promise.resolve();
  }
}
const cellHTMLFactory = { safe: true, mimeTypes: ["text/html"], defaultRank: 50, createRenderer: (o) => new CellHTML(o) };

/**
 * The Output widget's renderers: a copy of html-manager's registry with the page's sanitizer, Markdown through the
 * page's marked when it is there, math typeset by the page's KaTeX (with Sage's macros), HTML through CellHTML,
 * and no JavaScript renderer at all.
 */
export function untrustedRenderMime(renderMime, sanitize) {
  const options = {
    sanitizer: { sanitize: (html) => sanitize.html(html), getAutolink: () => true, allowNamedProperties: false },
  };
  const marked = globalThis.marked;
  if (marked && marked.parse) options.markdownParser = { render: (text) => Promise.resolve(marked.parse(text)) };
  const sage = globalThis.CELLSERVER_SAGE;
  if (sage) options.latexTypesetter = { typeset: (node) => sage.typeset(node) };
  const registry = renderMime.clone(options);
  registry.removeMimeType("application/javascript");
  registry.removeMimeType("text/javascript");
  registry.addFactory(cellHTMLFactory, registry.getRank("text/html"));
  return registry;
}

/**
 * Base's error view (a widget whose class cannot be loaded) writes its message, which names the kernel's model
 * and view classes, into innerHTML when clicked: it gets the message as escaped text instead.
 */
export function keepErrorsAsText(sanitize) {
  const render = ErrorWidgetView.prototype.render;
  if (render._cellTextOnly) return;
  const textOnly = function () {
    const generate = this.generateErrorMessage;
    this.generateErrorMessage = () => {
      const { msg, stack } = generate.call(this);
      return { msg: sanitize.escapeText(String(msg)), stack: sanitize.escapeText(String(stack)) };
    };
    return render.call(this);
  };
  textOnly._cellTextOnly = true;
  ErrorWidgetView.prototype.render = textOnly;
}
