/*
 * cellserver cells in the browser: an editor, live outputs, and the kernel behind them, over WAMP (autobahn.js).
 *
 * One Connection per page (reconnecting forever); a Kernel may be shared by "linked" cells; each Cell renders
 * progressive results as they come. Output HTML/SVG/Markdown comes from untrusted code and is sanitized by
 * sanitize.js (DOMPurify) unless the page passes {trusted: true}; widgets use the same sanitizer, always.
 */
(function (global) {
  "use strict";
  var URIS = global.CELLSERVER_URIS;
  var SANITIZE = global.CELLSERVER_SANITIZE;  // sanitize.js: the one sanitizer of outputs and widgets
  var api = global.cellserver = global.cellserver || {};
  var base = api.base || (global.location.origin + "/");

  function wsUrl() {
    var url = new URL(base);
    return (url.protocol === "https:" ? "wss://" : "ws://") + url.host + "/ws";
  }

  // -- the page's connection ------------------------------------------------------------

  function Connection() {
    var self = this;
    self.session = null;
    self.listeners = [];
    self.waiting = [];
    self.conn = new autobahn.Connection({
      url: wsUrl(), realm: "cell", max_retries: -1, initial_retry_delay: 0.5, max_retry_delay: 5, retry_delay_jitter: 0.1,
      // msgpack: file bytes travel as binary (autobahn.js's JSON has no binary encoding)
      serializers: [new autobahn.serializer.MsgpackSerializer()]
    });
    self.conn.onopen = function (session) {
      self.session = session;
      self.emit("open");
      var waiting = self.waiting;
      self.waiting = [];
      waiting.forEach(function (resolve) { resolve(session); });
    };
    self.conn.onclose = function (reason, details) {
      self.session = null;
      self.emit("close", details && details.will_retry);
      return false;  // keep retrying
    };
    self.conn.open();
  }
  Connection.prototype.on = function (fn) { this.listeners.push(fn); };
  Connection.prototype.emit = function (kind, extra) { this.listeners.forEach(function (fn) { fn(kind, extra); }); };
  Connection.prototype.ready = function () {
    var self = this;
    if (self.session) { return Promise.resolve(self.session); }
    return new Promise(function (resolve) { self.waiting.push(resolve); });
  };
  var connection = null;
  function getConnection() { return connection || (connection = new Connection()); }

  // -- what a reload keeps ------------------------------------------------------------------

  /*
   * A cell keeps its kernel's id and resume token, and the tag of its last run, in the tab's sessionStorage: a reload
   * takes the kernel back (cell.kernel.resume) and re-attaches to that run (cell.kernel.<id>.attach), so what ran
   * while the page was away is shown, then the rest live. The token is a bearer secret of the page's origin; a cell
   * made with {persist: false} keeps nothing.
   */
  var STORE = "cellserver:";
  function stored(key) {
    try { return JSON.parse(global.sessionStorage.getItem(STORE + key) || "null"); } catch (e) { return null; }
  }
  function store(key, value) {
    try {
      if (value === null) { global.sessionStorage.removeItem(STORE + key); } else { global.sessionStorage.setItem(STORE + key, JSON.stringify(value)); }
    } catch (e) { /* storage refused (a sandboxed frame): nothing is kept */ }
  }
  function pageAddress() { return global.location.pathname + global.location.search; }
  function newTag() {
    var bytes = new Uint8Array(16);
    global.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  // -- a kernel, possibly shared by linked cells ------------------------------------------

  var PYTHON = "python3";

  /** A kernel of kernelspec C{kernelName} (python3 by default; cell.kernelspecs() lists the others). */
  function Kernel(conn, kernelName, key) {
    var self = this;
    self.conn = conn;
    self.kernelName = kernelName || PYTHON;
    self.id = null;
    self.token = null;
    self.starting = null;
    self.subscribers = [];
    self.widgets = null;
    self.key = key ? "kernel:" + key : null;
    self.restored = self.restore();
    conn.on(function (kind) {
      if (kind === "open" && self.id) { self.resume(); }
    });
  }
  /** Take back the kernel a reload left (sessionStorage): a Promise of whether it is ours again. */
  Kernel.prototype.restore = function () {
    var self = this;
    var saved = self.key ? stored(self.key) : null;
    if (!saved || saved.kernelName !== self.kernelName) { return Promise.resolve(false); }
    return self.conn.ready().then(function (session) {
      return session.call(URIS.KERNEL_RESUME, [saved.id, saved.token]);
    }).then(function () {
      self.id = saved.id;
      self.token = saved.token;
      self.widgets = self.makeWidgetManager();
      return self.subscribe().then(function () {
        if (self.widgets) { self.widgets.restore().catch(function (e) { console.error("cellserver widgets:", e); }); }
        return true;
      });
    }, function () {
      store(self.key, null);  // gone (shut down, timed out): the next run starts a new one
      return false;
    });
  };
  Kernel.prototype.remember = function () {
    if (this.key) { store(this.key, this.id ? {id: this.id, token: this.token, kernelName: this.kernelName} : null); }
  };
  Kernel.prototype.ensure = function () {
    var self = this;
    return self.restored.then(function () { return self.started(); });
  };
  Kernel.prototype.started = function () {
    var self = this;
    if (self.id) { return Promise.resolve(self.id); }
    if (!self.starting) {
      self.starting = self.conn.ready().then(function (session) {
        return session.call(URIS.KERNEL_START, [], self.kernelName === PYTHON ? {} : {kernel_name: self.kernelName});
      }).then(function (info) {
        self.id = info.kernel_id;
        self.token = info.resume_token;
        self.starting = null;
        self.remember();
        self.widgets = self.makeWidgetManager();
        return self.subscribe().then(function () { return self.id; });
      }, function (err) { self.starting = null; throw err; });
    }
    return self.starting;
  };
  /** The kernel's widget manager (components of web/widgets/), when the page loaded it. */
  Kernel.prototype.makeWidgetManager = function () {
    var self = this;
    if (!global.CellWidgets) { return null; }
    return global.CellWidgets.createManager({
      comm: function (msgType, content, metadata, buffers) {
        return self.call("comm", [msgType, content], {metadata: metadata, buffers: buffers});
      },
      commInfo: function (targetName) { return self.call("comm_info", [], {target_name: targetName}); }
    }, {sanitize: SANITIZE});
  };
  Kernel.prototype.subscribe = function () {
    var self = this;
    var id = self.id;
    return self.conn.session.subscribe(URIS.iopub(id), function (args) {
      var msg = args[0];
      if (msg && msg.header && self.widgets && self.id === id) {
        try { self.widgets.handleMessage(msg); } catch (e) { console.error("cellserver widgets:", e); }
      }
      if (msg && msg.header && msg.header.msg_type === "status" && msg.content.execution_state === "dead" && self.id === id) {
        self.id = null;
        self.remember();
        self.subscribers.forEach(function (fn) { fn("dead", msg.content.reason); });
      }
    });
  };
  Kernel.prototype.resume = function () {
    var self = this;
    var id = self.id;
    return self.conn.session.call(URIS.KERNEL_RESUME, [id, self.token]).then(function () {
      self.subscribers.forEach(function (fn) { fn("resumed"); });  // runs cut off by the drop are followed again
      return self.subscribe().then(function () {
        // As JupyterLab does on reload: ask the kernel for its widgets' state (models the page lacks are made).
        if (self.widgets) { self.widgets.restore().catch(function (e) { console.error("cellserver widgets:", e); }); }
      });
    }, function () {
      if (self.id === id) {
        self.id = null;
        self.remember();
        self.subscribers.forEach(function (fn) { fn("dead", "it could not be resumed after the connection came back"); });
      }
    });
  };
  /** Call a procedure of the kernel (started on demand); C{onProgress} gets progressive results. */
  Kernel.prototype.call = function (name, args, kwargs, onProgress) {
    var self = this;
    return self.ensure().then(function (id) {
      var options = onProgress ? {receive_progress: true} : {};
      var d = self.conn.session.call(URIS.kernel(id, name), args || [], kwargs || {}, options);
      // autobahn.js reports progress through its when.js promise only: attach the handler there.
      return new Promise(function (resolve, reject) { d.then(resolve, reject, onProgress); });
    });
  };
  /** Stop the kernel (a cell that switched language lets its old kernel go). */
  Kernel.prototype.release = function () {
    var self = this;
    var id = self.id;
    self.id = null;
    self.remember();
    self.subscribers = [];
    if (id && self.conn.session) {
      self.conn.session.call(URIS.kernel(id, "shutdown")).catch(function () { /* gone already */ });
    }
  };
  var linkedKernels = {};  // kernel name -> the kernel that linked cells of that language share
  var cellCount = 0;  // cells made on this page so far (a cell without an element selector is found by its place)

  // -- languages ----------------------------------------------------------------------------

  /** CodeMirror's mode for a kernelspec's language (modes loaded by assets.js). */
  var MODES = {python: "python", r: "r", bash: "shell", sh: "shell", shell: "shell"};
  function editorMode(kernelName, spec) {
    var language = ((spec && spec.spec && spec.spec.language) || "").toLowerCase();
    return MODES[language] || {ir: "r", bash: "shell"}[kernelName] || "python";
  }
  var kernelspecs = null;
  /** cell.kernelspecs(), asked once per page (a Promise of {default, kernelspecs: {name: spec}}). */
  function getKernelspecs() {
    if (!kernelspecs) {
      kernelspecs = getConnection().ready().then(function (session) {
        return session.call(URIS.KERNELSPECS);
      });
      kernelspecs.catch(function () { kernelspecs = null; });
    }
    return kernelspecs;
  }
  /**
   * SageMathCell's language names (its pages' `languages`, its links' `lang`) -> the kernelspec names that serve
   * each here, in order of preference; a kernelspec whose language is the name serves it too. The one table
   * (components/router/sagecell_service.py's LANGUAGES mirrors it): add a row for another language.
   */
  var ALIASES = {
    sage: ["sagemath"], python: ["python3"], r: ["ir"], gp: ["pari_jupyter", "xeus-gp", "gp"], gap: ["gap", "gap-4"],
    singular: ["singular"], octave: ["octave"], maxima: ["maxima"], macaulay2: ["macaulay2", "m2"]
  };
  /**
   * The kernelspec name an embedder's C{language} means: a kernelspec's name, a SageMathCell name (ALIASES), or a
   * kernelspec's language ("r", "bash"); null when no kernelspec of C{specs} serves it.
   */
  function kernelNameFor(language, specs) {
    var wanted = String(language).toLowerCase();
    if (specs[wanted]) { return wanted; }
    var alias = (ALIASES[wanted] || []).filter(function (name) { return specs[name]; });
    if (alias.length) { return alias[0]; }
    var names = Object.keys(specs).filter(function (name) {
      return ((specs[name].spec && specs[name].spec.language) || "").toLowerCase() === wanted;
    });
    return names.length ? names[0] : null;
  }

  // -- rendering ------------------------------------------------------------------------

  var ansi = new AnsiUp();
  ansi.use_classes = false;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function joined(v) { return Array.isArray(v) ? v.join("") : (v || ""); }

  function Renderer(area, trusted) {
    this.area = area;
    this.trusted = !!trusted;
    this.clearPending = false;
  }
  Renderer.prototype.sanitize = function (html, svg) {
    if (this.trusted) { return html; }
    return svg ? SANITIZE.svg(html) : SANITIZE.html(html);
  };
  /** KaTeX options, with Sage's TeX macros when sage.js is loaded. */
  function mathOptions(options) {
    return global.CELLSERVER_SAGE ? global.CELLSERVER_SAGE.mathOptions(options) : options;
  }
  Renderer.prototype.math = function (node) {
    if (global.renderMathInElement) {
      try {
        renderMathInElement(node, mathOptions({delimiters: [
          {left: "$$", right: "$$", display: true}, {left: "$", right: "$", display: false},
          {left: "\\(", right: "\\)", display: false}, {left: "\\[", right: "\\]", display: true}], throwOnError: false}));
      } catch (e) { /* leave the text as it is */ }
    }
  };
  var WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";

  /** A widget's live view, rendered by the kernel's widget manager (web/widgets/); null without one. */
  Renderer.prototype.widget = function (view) {
    var manager = this.widgets && this.widgets();
    if (!manager || !view || !view.model_id) { return null; }
    var node = el("div", "output-widget");
    manager.render(view.model_id, node).catch(function (err) {
      node.appendChild(el("pre", "output-notice notice-error", "This widget could not be shown: " + err));
    });
    return node;
  };
  /** One MIME bundle, in Jupyter's order of preference (a widget, Sage's math or 3D viewer, HTML, Markdown, SVG, PNG, JPEG, LaTeX, JSON, text). */
  Renderer.prototype.bundle = function (data) {
    var node = data[WIDGET_VIEW] ? this.widget(data[WIDGET_VIEW]) : null;
    node = node || (global.CELLSERVER_SAGE ? global.CELLSERVER_SAGE.render(data) : null);  // sage.js
    if (node) {
      return node;
    } else if (data["text/html"]) {
      node = el("div", "output-html");
      node.innerHTML = this.sanitize(joined(data["text/html"]));
      this.math(node);
    } else if (data["text/markdown"]) {
      node = el("div", "output-markdown");
      node.innerHTML = this.sanitize(marked.parse(joined(data["text/markdown"])));
      this.math(node);
    } else if (data["image/svg+xml"]) {
      node = el("div", "output-svg");
      node.innerHTML = this.sanitize(joined(data["image/svg+xml"]), true);
    } else if (data["image/png"]) {
      node = el("img", "output-image");
      node.src = "data:image/png;base64," + joined(data["image/png"]).replace(/\n/g, "");
    } else if (data["image/jpeg"]) {
      node = el("img", "output-image");
      node.src = "data:image/jpeg;base64," + joined(data["image/jpeg"]).replace(/\n/g, "");
    } else if (data["text/latex"]) {
      node = el("div", "output-latex");
      var tex = joined(data["text/latex"]).trim().replace(/^\$\$?|\$\$?$/g, "");
      try { katex.render(tex, node, mathOptions({displayMode: true, throwOnError: false})); } catch (e) { node.textContent = tex; }
    } else if (data["application/json"]) {
      node = el("pre", "output-json", JSON.stringify(data["application/json"], null, 2));
    } else {
      node = el("pre", "output-text");
      node.innerHTML = ansi.ansi_to_html(joined(data["text/plain"]));
    }
    return node;
  };
  /** Text as a terminal shows it: each ``\r`` returns to the start of the line, and what follows overwrites it. */
  function overwrite(line) {
    var shown = "";
    line.split("\r").forEach(function (part) { shown = part + shown.slice(part.length); });
    return shown;
  }
  /**
   * Add a chunk to a stream's <pre> in time proportional to the chunk: finished lines are rendered once and
   * appended; only the unfinished last line (where a progress counter's ``\r`` lands) is rendered again.
   */
  function appendStream(pre, text) {
    var lines = (pre.streamTail + text).replace(/\r\n/g, "\n").split("\n");
    pre.streamTail = lines.pop();
    if (lines.length) {
      var done = document.createElement("span");
      done.innerHTML = ansi.ansi_to_html(lines.map(overwrite).join("\n") + "\n");
      pre.firstChild.appendChild(done);
    }
    pre.lastChild.innerHTML = new AnsiUp().ansi_to_html(overwrite(pre.streamTail));
  }
  Renderer.prototype.clear = function () { this.area.innerHTML = ""; this.clearPending = false; };
  Renderer.prototype.add = function (out) {
    var kind = out.output_type;
    if (kind === "clear_output") {
      if (out.wait) { this.clearPending = true; } else { this.clear(); }
      return;
    }
    if (kind === "update_display_data") {
      var id = out.transient && out.transient.display_id;
      var self = this;
      this.area.querySelectorAll("[data-display-id]").forEach(function (old) {
        if (old.getAttribute("data-display-id") === id) {
          var fresh = self.bundle(out.data);
          fresh.setAttribute("data-display-id", id);
          old.replaceWith(fresh);
        }
      });
      return;
    }
    if (this.clearPending) { this.clear(); }
    if (kind === "stream") {
      var last = this.area.lastElementChild;
      if (!last || last.getAttribute("data-stream") !== out.name) {
        last = el("pre", "output-stream output-" + out.name);
        last.setAttribute("data-stream", out.name);
        last.appendChild(el("span", "stream-lines"));
        last.appendChild(el("span", "stream-tail"));
        last.streamTail = "";
        this.area.appendChild(last);
      }
      appendStream(last, out.text);
    } else if (kind === "error") {
      var err = el("pre", "output-error");
      err.innerHTML = ansi.ansi_to_html((out.traceback || []).join("\n") || (out.ename + ": " + out.evalue));
      this.area.appendChild(err);
    } else if (kind === "display_data" || kind === "execute_result") {
      var node = this.bundle(out.data || {});
      if (out.transient && out.transient.display_id) { node.setAttribute("data-display-id", out.transient.display_id); }
      this.area.appendChild(node);
    }
  };
  Renderer.prototype.notice = function (text, cls) {
    this.area.appendChild(el("div", "output-notice " + (cls || ""), text));
  };

  // -- a cell -----------------------------------------------------------------------------

  /**
   * The cell's own DOM, in a shadow root of the element the page gave: the page's CSS does not reach inside (but
   * for inherited properties, which :host resets), and nothing an output styles reaches the page.
   */
  function shadowContainer(host) {
    var shadow = host.shadowRoot || host.attachShadow({mode: "open"});
    shadow.innerHTML = "";
    var links = (global.CELLSERVER_ASSETS ? global.CELLSERVER_ASSETS.css : []).map(function (href) {
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = base + href;
      shadow.appendChild(link);
      return new Promise(function (resolve) { link.onload = link.onerror = resolve; });
    });
    var root = el("div", "cellserver-cell");
    shadow.appendChild(root);
    return {root: root, styled: Promise.all(links)};
  }

  function Cell(options) {
    var self = this;
    var host = typeof options.element === "string" ? document.querySelector(options.element) : options.element;
    var container = shadowContainer(host);
    var root = container.root;
    // outputElement: the output shows there (in a shadow root of its own), apart from the editor (SageMathCell's
    // outputLocation)
    var outHost = typeof options.outputElement === "string" ? document.querySelector(options.outputElement) : options.outputElement;
    var outContainer = outHost && outHost !== host ? shadowContainer(outHost) : container;
    self.options = options;
    self.conn = getConnection();
    cellCount += 1;
    // what a reload finds this cell by: the page, and the cell's element (or its place among the page's cells)
    self.key = options.persist === false ? null : global.location.pathname + "|" +
      (typeof options.element === "string" ? options.element : "#" + cellCount);
    self.kernelName = options.kernel_name || PYTHON;
    self.kernel = self.kernelFor(self.kernelName);
    self.running = null;
    var editorHost = el("div", "cell-editor");
    var bar = el("div", "cell-toolbar");
    self.runButton = el("button", "cell-run", "Run");
    self.interruptButton = el("button", "cell-interrupt", "Interrupt");
    self.restartButton = el("button", "cell-restart", "Restart");
    self.shareButton = el("button", "cell-share", "Share");
    self.uploadInput = el("input", "cell-upload");
    self.uploadInput.type = "file";
    self.uploadInput.multiple = true;
    self.uploadInput.title = "Put files into the kernel's directory (or drop them on the cell)";
    self.filesBox = el("div", "cell-files");
    self.status = el("span", "cell-status", "");
    self.languageSelect = el("select", "cell-language");
    self.languageSelect.title = "The language this cell runs in";
    self.languageSelect.hidden = !options.languagePicker;
    self.banner = el("div", "cell-banner");
    self.banner.hidden = true;
    self.shareBox = el("div", "cell-share-links");
    self.inputBox = el("form", "cell-input");
    self.inputBox.hidden = true;
    self.inputPrompt = el("label", "cell-input-prompt");
    self.inputField = el("input", "cell-input-field");
    self.inputBox.appendChild(self.inputPrompt);
    self.inputBox.appendChild(self.inputField);
    var output = el("div", "cell-output");
    self.renderer = new Renderer(output, options.trusted);
    self.renderer.widgets = function () { return self.kernel.widgets; };
    [self.languageSelect, self.runButton, self.interruptButton, self.restartButton, self.shareButton, self.uploadInput, self.status].forEach(function (b) { bar.appendChild(b); });
    // The input box comes after the output, as a notebook puts the prompt after what was printed before it.
    [self.banner, editorHost, bar, self.shareBox].forEach(function (n) { root.appendChild(n); });
    [output, self.inputBox, self.filesBox].forEach(function (n) { outContainer.root.appendChild(n); });
    self.interruptButton.disabled = true;
    if (options.hideShare) { self.shareButton.hidden = true; }
    if (options.template === "minimal") {  // SageMathCell's minimal template: the Run button and the output
      [self.interruptButton, self.restartButton, self.shareButton, self.uploadInput].forEach(function (b) { b.hidden = true; });
    }
    if (options.hideEditor) { editorHost.hidden = true; }
    if (options.evalButtonText) { self.runButton.textContent = options.evalButtonText; }

    self.editor = CodeMirror(editorHost, {
      value: options.code || "", mode: editorMode(self.kernelName), lineNumbers: true, matchBrackets: true, indentUnit: 4,
      readOnly: !!options.readOnly,
      viewportMargin: Infinity,
      extraKeys: {
        "Shift-Enter": function () { self.run(); },
        "Tab": function (cm) { self.complete(cm); },
        "Shift-Tab": function (cm) { self.inspect(cm); }
      }
    });
    container.styled.then(function () { self.editor.refresh(); });  // measured again once its CSS is in
    self.runButton.onclick = function () { self.run(); };
    self.interruptButton.onclick = function () { self.kernel.call("interrupt").catch(self.failed("Interrupting")); };
    self.restartButton.onclick = function () { self.restart().catch(self.failed("Restarting")); };
    self.shareButton.onclick = function () { self.share(); };
    self.languageSelect.onchange = function () { self.setLanguage(self.languageSelect.value); };
    self.uploadInput.onchange = function () { self.upload(self.uploadInput.files); };
    root.addEventListener("dragover", function (event) { event.preventDefault(); root.classList.add("dragging"); });
    root.addEventListener("dragleave", function () { root.classList.remove("dragging"); });
    root.addEventListener("drop", function (event) {
      event.preventDefault();
      root.classList.remove("dragging");
      self.upload(event.dataTransfer.files);
    });
    self.inputBox.onsubmit = function (event) {
      event.preventDefault();
      var value = self.inputField.value;
      self.inputBox.hidden = true;
      self.renderer.add({output_type: "stream", name: "stdout", text: self.inputPrompt.textContent + value + "\n"});
      self.kernel.call("input", [value]).catch(function (err) {
        // Said in the cell like every failed call; the kernel still waits, so the box comes back for another try.
        self.renderer.notice("Sending input failed: " + errorText(err), "notice-error");
        if (self.running) { self.inputBox.hidden = false; self.inputField.focus(); }
      });
    };
    self.watchKernel();
    self.conn.on(function (kind, willRetry) {
      if (kind === "close") {
        self.banner.hidden = false;
        self.banner.textContent = "The connection to the server was lost; reconnecting…";
      } else if (kind === "open") {
        self.banner.hidden = true;
      }
    });
    if (!self.conn.session) {
      self.banner.hidden = false;
      self.banner.textContent = "Connecting…";
    }
    self.languagesReady = self.showLanguages(options.language);
    if (options.language) { self.waitFor(self.languagesReady); }  // its kernel is known once the node answered
    self.reattach().catch(self.failed("Showing the last run again"));
    if (options.autoeval) {
      if (options.language) { self.languagesReady.then(function () { self.run(); }); } else { self.run(); }
    }
  }

  Cell.prototype.setCode = function (code) { this.editor.setValue(code); };

  /** The kernel of C{kernelName} this cell uses: its own, or the one linked cells of that language share. */
  Cell.prototype.kernelFor = function (kernelName) {
    if (!this.options.linked) { return new Kernel(this.conn, kernelName, this.key && this.key + "|" + kernelName); }
    // linkKey: cells linked under one key share a kernel, apart from other keys' (SageMathCell's linkKey)
    var key = (this.options.linkKey ? this.options.linkKey + "\u0000" : "") + kernelName;
    var stored = this.key && global.location.pathname + "|linked|" + key;
    return linkedKernels[key] || (linkedKernels[key] = new Kernel(this.conn, kernelName, stored));
  };
  Cell.prototype.watchKernel = function () {
    var self = this;
    var kernel = self.kernel;
    kernel.subscribers.push(function (kind, reason) {
      if (self.kernel !== kernel) { return; }
      if (kind === "resumed") {
        if (self.rejoin) { self.rejoin(); }
        return;
      }
      self.rejoin = null;
      self.renderer.notice("The kernel died: " + reason + ". Running again starts a new kernel.", "notice-dead");
      self.finish();
    });
  };
  /**
   * Fill the language picker from cell.kernelspecs() (and resolve an embedder's C{language}, a kernelspec name or a
   * language such as "r" or "bash"); a Promise that settles when done.
   */
  Cell.prototype.showLanguages = function (language) {
    var self = this;
    var select = self.languageSelect;
    select.appendChild(new Option(self.kernelName, self.kernelName, true, true));
    if (!self.options.languagePicker && !language) { return Promise.resolve(); }
    return getKernelspecs().then(function (found) {
      var specs = found.kernelspecs || {};
      self.specs = specs;
      select.innerHTML = "";
      Object.keys(specs).sort(function (a, b) { return a === PYTHON ? -1 : b === PYTHON ? 1 : a < b ? -1 : 1; }).forEach(function (name) {
        select.appendChild(new Option((specs[name].spec && specs[name].spec.display_name) || name, name));
      });
      if (language) {
        var name = kernelNameFor(language, specs);
        if (name) { self.setLanguage(name); } else { self.renderer.notice("This server offers no language " + language + ".", "notice-error"); }
      }
      select.value = self.kernelName;
    }, function (err) {
      self.renderer.notice("The list of languages could not be loaded: " + ((err && err.args && err.args[0]) || err), "notice-error");
    });
  };
  /** Run this cell's code in another language (a kernelspec name) from now on: a kernel of that language. */
  Cell.prototype.setLanguage = function (kernelName) {
    var self = this;
    kernelName = kernelName || PYTHON;
    if (kernelName === self.kernelName) { return; }
    if (self.running) { self.kernel.call("interrupt").catch(function () {}); }
    if (!self.options.linked) { self.kernel.release(); }
    self.kernelName = kernelName;
    self.kernel = self.kernelFor(kernelName);
    self.watchKernel();
    self.finish();
    self.editor.setOption("mode", editorMode(kernelName, self.specs && self.specs[kernelName]));
    if (!Array.prototype.some.call(self.languageSelect.options, function (o) { return o.value === kernelName; })) {
      self.languageSelect.appendChild(new Option(kernelName, kernelName));
    }
    self.languageSelect.value = kernelName;
  };

  /** Why a call failed, from a WAMP error (its message) or anything else. */
  function errorText(err) {
    return (err && err.args && err.args[0]) || (err && err.error) || String(err);
  }

  /** An error handler that says in the cell what failed and why (no call fails silently). */
  Cell.prototype.failed = function (what) {
    var self = this;
    return function (err) {
      self.renderer.notice(what + " failed: " + errorText(err), "notice-error");
      self.finish();
    };
  };

  Cell.prototype.finish = function () {
    this.running = null;
    this.status.textContent = "";
    this.status.classList.remove("running");
    this.runButton.disabled = false;
    this.interruptButton.disabled = true;
    this.inputBox.hidden = true;
  };

  /**
   * Runs wait for C{promise}: an embedder's choice of the cell's language, known only once the node answered
   * cell.kernelspecs() (a click before that ran the code in the guessed language's kernel, apart from linked cells).
   */
  Cell.prototype.waitFor = function (promise) {
    var self = this;
    var settled = Promise.resolve(promise).then(function () {}, function () {});
    self.pending = settled;
    settled.then(function () { if (self.pending === settled) { self.pending = null; } });
  };

  Cell.prototype.run = function () {
    var self = this;
    if (self.running) { return self.running; }
    if (self.pending) { return self.pending.then(function () { return self.run(); }); }
    var code = self.editor.getValue();
    var tag = newTag();
    if (self.key) { store("run:" + self.key, {tag: tag, code: code, kernelName: self.kernelName, page: pageAddress()}); }
    var next = 0;
    return self.follow(function (onItem) {
      return self.kernel.call("execute", [code], {allow_stdin: true, tag: tag}, function (out) { onItem(out, ++next); });
    }, tag);
  };

  /** After a reload: the run this cell last started, if its kernel came back (what it printed, then the rest live). */
  Cell.prototype.reattach = function () {
    var self = this;
    var saved = self.key ? stored("run:" + self.key) : null;
    // Only the same page again (a reload): a link to other code on the same path starts with that code.
    if (!saved || saved.kernelName !== self.kernelName || saved.page !== pageAddress()) { return Promise.resolve(null); }
    var kernel = self.kernel;
    return kernel.restored.then(function (ours) {
      return ours ? kernel.call("executions") : [];
    }).then(function (kept) {
      var known = kept.some(function (e) { return e.tag === saved.tag; });
      if (!known || self.running || self.kernel !== kernel) { return null; }  // forgotten (docs/api.md's bounds)
      self.setCode(saved.code);
      return self.follow(function (onItem) {
        return kernel.call("attach", [saved.tag], {}, function (got) { onItem(got.output, got.next); });
      }, saved.tag);
    });
  };

  /**
   * Show a run's progressive outputs and its end. C{start(onItem)} makes the call; C{onItem(output, next)} takes
   * each item and the record's number of the next (docs/api.md, "Durable executions"). With a C{tag}, a connection
   * that drops mid-run (autobahn.js then never settles the call) is followed again once the kernel is resumed:
   * attach from the next item, so nothing is shown twice or lost.
   */
  Cell.prototype.follow = function (start, tag) {
    var self = this;
    var renderer = self.renderer;
    renderer.clear();
    self.status.textContent = "running…";
    self.status.classList.add("running");
    self.runButton.disabled = true;
    self.interruptButton.disabled = false;
    var state = {next: 0, shown: 0, done: false, attempt: 0};
    var settle;
    self.running = new Promise(function (resolve) { settle = resolve; });
    function item(attempt) {
      return function (out, next) {
        if (attempt !== state.attempt || state.done) { return; }
        state.next = next;
        if (out.output_type === "input_request") {
          self.inputPrompt.textContent = out.prompt;
          self.inputField.type = out.password ? "password" : "text";
          self.inputField.value = "";
          self.inputBox.hidden = false;
          self.inputField.focus();
        } else {
          state.shown += 1;
          var widgets = self.kernel.widgets;
          if (!widgets || widgets.showInCell(out)) { renderer.add(out); }  // else an Output widget shows it
        }
      };
    }
    function ended(attempt, result) {
      if (attempt !== state.attempt || state.done) { return; }
      state.done = true;
      self.rejoin = null;
      if (!state.shown) { (result.outputs || []).forEach(function (out) { renderer.add(out); }); }
      if (result.status === "timeout") {
        renderer.notice("The execution timed out" + (result.kernel_restarted ? "; the kernel was restarted." : "."), "notice-timeout");
      } else if (result.status === "aborted") {
        renderer.notice("The execution was aborted.", "notice-aborted");
      }
      self.showFiles(result.files || []);
      self.finish();
      settle(result);
    }
    function failed(attempt, err) {
      if (attempt !== state.attempt || state.done) { return; }
      state.done = true;
      self.rejoin = null;
      var uri = err && err.error;
      if (uri !== "cell.error.kernel_died") {
        renderer.notice("Error: " + (uri || err) + (err && err.args && err.args[0] ? ": " + err.args[0] : ""), "notice-error");
      }
      self.finish();
      settle(undefined);
    }
    function go(call) {
      state.attempt += 1;
      var attempt = state.attempt;
      call(item(attempt)).then(function (result) { ended(attempt, result); }, function (err) { failed(attempt, err); });
    }
    go(start);
    self.rejoin = !tag ? null : function () {
      go(function (onItem) {
        return self.kernel.call("attach", [tag], {since: state.next}, function (got) { onItem(got.output, got.next); });
      });
    };
    return self.running;
  };

  var CHUNK = 1024 * 1024;

  /** Put files (a FileList) into the kernel's working directory, in 1 MiB chunks. */
  Cell.prototype.upload = function (fileList) {
    var self = this;
    var files = Array.prototype.slice.call(fileList || []);
    return files.reduce(function (previous, file) {
      return previous.then(function () { return file.arrayBuffer(); }).then(function (buffer) {
        var bytes = new Uint8Array(buffer);
        var offset = 0;
        function next() {
          var end = Math.min(offset + CHUNK, bytes.length);
          var final = end >= bytes.length;
          return self.kernel.call("files.put", [file.name, bytes.subarray(offset, end)], {offset: offset, final: final}).then(function (reply) {
            offset = end;
            if (!final) { return next(); }
            self.renderer.notice("Uploaded " + file.name + " (" + reply.size + " bytes)", "notice-upload");
          });
        }
        return next();
      }).catch(function (err) {
        self.renderer.notice("Could not upload " + file.name + ": " + ((err && err.args && err.args[0]) || (err && err.error) || err), "notice-error");
      });
    }, Promise.resolve()).then(function () { self.uploadInput.value = ""; });
  };

  /** Fetch a file of the kernel's directory (chunks as progressive results) as a Blob. */
  Cell.prototype.fetchFile = function (name) {
    var chunks = [];
    return this.kernel.call("files.get", [name], {}, function (chunk) { chunks.push(chunk); }).then(function () {
      chunks.sort(function (a, b) { return a.offset - b.offset; });
      return new Blob(chunks.map(function (c) { return c.data; }));
    });
  };

  var IMAGE = /\.(png|jpe?g|gif|svg)$/i;

  /** The files a run made: a download link each (through the WAMP API), images also shown inline. */
  Cell.prototype.showFiles = function (files) {
    var self = this;
    (self.objectUrls || []).forEach(function (url) { URL.revokeObjectURL(url); });
    self.objectUrls = [];
    self.filesBox.innerHTML = "";
    files.forEach(function (f) {
      var row = el("div", "cell-file");
      var link = el("a", "cell-file-link", f.name);
      link.href = "#";
      link.title = f.size + " bytes";
      link.onclick = function (event) {
        event.preventDefault();
        self.fetchFile(f.name).then(function (blob) {
          var a = document.createElement("a");
          a.href = URL.createObjectURL(blob);
          a.download = f.name.split("/").pop();
          document.body.appendChild(a);
          a.click();
          a.remove();
          setTimeout(function () { URL.revokeObjectURL(a.href); }, 0);  // the download has its own copy
        }).catch(self.failed("Downloading " + f.name));
      };
      row.appendChild(link);
      self.filesBox.appendChild(row);
      if (IMAGE.test(f.name)) {
        self.fetchFile(f.name).then(function (blob) {
          var img = el("img", "cell-file-image");
          var type = /svg$/i.test(f.name) ? "image/svg+xml" : "";
          img.src = URL.createObjectURL(type ? new Blob([blob], {type: type}) : blob);
          self.objectUrls.push(img.src);
          row.appendChild(img);
        }).catch(self.failed("Showing " + f.name));
      }
    });
  };

  Cell.prototype.restart = function () {
    var self = this;
    if (!self.kernel.id) { return Promise.resolve(); }
    self.status.textContent = "restarting…";
    return self.kernel.call("restart").then(function () {
      self.kernel.widgets = self.kernel.makeWidgetManager();  // the old process's widgets are gone
      self.renderer.clear();
      self.renderer.notice("The kernel was restarted.", "notice-restart");
      self.finish();
    });
  };

  Cell.prototype.complete = function (cm) {
    var self = this;
    var cursor = cm.getCursor();
    var before = cm.getLine(cursor.line).slice(0, cursor.ch);
    if (!/[\w.]$/.test(before)) { cm.replaceSelection("    "); return; }
    var pos = cm.indexFromPos(cursor);
    self.kernel.call("complete", [cm.getValue(), pos]).then(function (reply) {
      var from = cm.posFromIndex(reply.cursor_start), to = cm.posFromIndex(reply.cursor_end);
      var list = reply.matches || [];
      if (list.length === 1) { cm.replaceRange(list[0], from, to); return; }
      if (list.length > 1) {
        cm.showHint({hint: function () { return {list: list, from: from, to: to}; }, completeSingle: false});
      }
    }).catch(self.failed("Completion"));
  };

  Cell.prototype.inspect = function (cm) {
    var self = this;
    self.kernel.call("inspect", [cm.getValue(), cm.indexFromPos(cm.getCursor())]).then(function (reply) {
      var old = self.editor.getWrapperElement().parentNode.querySelector(".cell-help");
      if (old) { old.remove(); }
      if (!reply.found) { return; }
      var help = el("pre", "cell-help");
      help.innerHTML = ansi.ansi_to_html(reply.data["text/plain"] || "");
      help.onclick = function () { help.remove(); };
      self.editor.getWrapperElement().parentNode.appendChild(help);
    }).catch(self.failed("Help"));
  };

  Cell.prototype.share = function () {
    var self = this;
    var code = self.editor.getValue();
    var origin = new URL(base).origin;
    self.shareBox.innerHTML = "";
    var z = el("a", "share-z", "link with the code inside");
    // always with its language: a link without one is SageMathCell's, whose default is Sage
    z.href = origin + "/?z=" + zip(code) + "&lang=" + encodeURIComponent(self.kernelName);
    self.shareBox.appendChild(z);
    return self.conn.ready().then(function (session) {
      // A permalink's language is "python" for the forked Python kernel, otherwise the kernelspec's name.
      return session.call(URIS.PERMALINK_SAVE, [code], self.kernelName === PYTHON ? {} : {language: self.kernelName});
    }).then(function (saved) {
      var q = el("a", "share-q", origin + saved.url);
      q.href = origin + saved.url;
      self.shareBox.insertBefore(q, self.shareBox.firstChild);
    }, function (err) {
      self.shareBox.appendChild(el("span", "share-error", " (could not store the code: " + ((err && err.args && err.args[0]) || err) + ")"));
    });
  };

  function zip(code) {
    var bytes = pako.deflate(new TextEncoder().encode(code));
    var s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function unzip(text) {
    var b64 = text.replace(/ /g, "+").replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return new TextDecoder().decode(pako.inflate(bytes));
  }

  /**
   * The code a page URL asks for: ?c=<code>, ?z=<base64url(zlib(code))> (padded or not) or ?q=<permalink id> (a
   * Promise of a string or null).
   */
  function codeFromLocation(search) {
    var params = new URLSearchParams(search);
    if (params.has("c")) { return Promise.resolve(params.get("c")); }
    if (params.get("z")) {
      try { return Promise.resolve(unzip(params.get("z"))); } catch (e) {
        return Promise.reject(new Error("its z= is not zlib-compressed URL-safe base64 (" + e.message + ")"));
      }
    }
    if (params.get("q")) {
      return getConnection().ready().then(function (session) {
        return session.call(URIS.PERMALINK_GET, [params.get("q")]);
      }).then(function (found) { return found.code; });
    }
    return Promise.resolve(null);
  }

  /**
   * The code and language a page URL asks for (a Promise of {code, kernel_name} or null): see codeFromLocation.
   * C{kernel_name} is the stored permalink's, else the link's `lang` (a kernelspec name or a SageMathCell language
   * name, resolved by kernelNameFor), else null: a link without `lang` is SageMathCell's, whose default is Sage.
   */
  function sourceFromLocation(search) {
    var params = new URLSearchParams(search);
    if (!params.has("c") && !params.get("z") && params.get("q")) {
      return getConnection().ready().then(function (session) {
        return session.call(URIS.PERMALINK_GET, [params.get("q")]);
      }).then(function (found) {
        var language = found.language && found.language !== "python" ? found.language : PYTHON;
        return {code: found.code, kernel_name: language};
      });
    }
    return codeFromLocation(search).then(function (code) {
      return code === null ? null : {code: code, kernel_name: params.get("lang") || null};
    });
  }

  api.makeCellNow = function (options) { return new Cell(options); };
  api.makeCell = api.makeCellNow;
  api.codeFromLocation = codeFromLocation;
  api.kernelNameFor = kernelNameFor;
  /** cell.kernelspecs(), asked once per page: a Promise of {default, kernelspecs: {name: spec}}. */
  api.kernelspecs = getKernelspecs;
  api.sourceFromLocation = sourceFromLocation;
  /** The page's connection (for tests: they cut it to check what a reconnect brings back). */
  api._connection = getConnection;
})(window);
