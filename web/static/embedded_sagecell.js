/*
 * SageMathCell's embedding API on this node: pages written for SageMathCell work by changing the host in
 *   <script src="https://HOST/static/embedded_sagecell.js"></script>
 *   sagecell.makeSagecell({inputLocation: "div.compute", evalButtonText: "Evaluate", languages: ["sage", "python"],
 *                          hide: ["permalink"], linked: true, autoeval: false, template: sagecell.templates.minimal});
 * Written for cellserver (see docs/web.md, "Pages written for SageMathCell"): each matching element becomes a cell of
 * this node's own embed (../embed.js, cellserver.makeCell), loaded from this script's origin, so it works from a page
 * of any origin. Options with no equivalent here (editor types, fullScreen, done, messages, mode...) are ignored.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var root = script.src.replace(/static\/[^\/]*$/, "");  // the node: this file is at <root>static/
  var sagecell = window.sagecell = window.sagecell || {};

  /** SageMathCell's names, as its picker shows them; each runs where cell.kernelspecs() offers a kernel for it. */
  var NAMES = {
    sage: "Sage", gap: "GAP", gp: "GP", html: "HTML", macaulay2: "Macaulay2", maxima: "Maxima", octave: "Octave",
    python: "Python", r: "R", singular: "Singular"
  };
  var HIDDEN_BY_DEFAULT = ["messages"];

  sagecell.templates = {
    minimal: {editor: "textarea-readonly", hide: ["editor", "files", "permalink"]},  // an evaluate button and nothing else
    restricted: {editor: "codemirror-readonly", hide: ["files", "permalink"]}  // code that cannot be edited
  };
  sagecell.allLanguages = Object.keys(NAMES);
  sagecell.modes = {sage: "python", python: "python", html: "htmlmixed", macaulay2: "macaulay2", r: "r"};
  sagecell.kernels = sagecell.kernels || [];
  sagecell.quietMode = false;

  // -- loading: makeSagecell works at once; the cells are made once cellserver's embed and the page's DOM are ready --
  var loaded = false;
  var waiting = [];
  var resolveReady;
  sagecell.ready = new Promise(function (resolve) { resolveReady = resolve; });
  function whenLoaded(fn) { if (loaded) { fn(); } else { waiting.push(fn); } }
  function domReady(fn) {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", fn); } else { fn(); }
  }
  var api = window.cellserver = window.cellserver || {};
  var pageOnready = api.onready;
  api.onready = function () {
    if (pageOnready) { pageOnready(); }
    domReady(function () {
      loaded = true;
      resolveReady(sagecell);
      var fns = waiting;
      waiting = [];
      fns.forEach(function (fn) { fn(); });
    });
  };
  if (api.makeCellNow) {
    api.onready();  // the page loaded embed.js itself already
  } else if (!api.base) {  // (with api.base, the page's own embed.js is loading: its onready is chained above)
    var embed = document.createElement("script");
    embed.src = root + "embed.js";
    embed.setAttribute("data-sagecell-embed", "1");
    embed.onerror = function () { console.error("sagecell: could not load " + embed.src); };
    (document.head || document.documentElement).appendChild(embed);
  }

  /** SageMathCell's sagecell.init(callback): the callback runs once cells can be made. */
  sagecell.init = function (callback) { if (callback) { whenLoaded(function () { callback(sagecell); }); } };

  // -- making cells -----------------------------------------------------------------------------------------------

  var calls = 0;

  /**
   * sagecell.makeSagecell(args) -> cellInfo at once (filled in once the cells exist: inputLocation,
   * outputLocation, code, languages, hide, ..., `cell` (the cellserver cell), `submit()`; several matching elements
   * give `array`, one cellInfo each).
   */
  sagecell.makeSagecell = function (args) {
    if (!args || args.inputLocation === undefined) { throw "Must specify an inputLocation!"; }
    var cellInfo = {};
    if (args.linkKey) { args = Object.assign({}, args, {linked: true}); }
    var call = (calls += 1);
    whenLoaded(function () {
      try {
        make(args, cellInfo, args.linked ? (args.linkKey ? "key:" + args.linkKey : "call:" + call) : null);
      } catch (e) {
        console.warn("sagecell: makeSagecell failed", e);
      }
    });
    return cellInfo;
  };
  window.singlecell = sagecell;  // SageMathCell's old names
  sagecell.makeSinglecell = sagecell.makeSagecell;

  function elements(location) {
    if (typeof location === "string") { return Array.prototype.slice.call(document.querySelectorAll(location)); }
    if (location && location.nodeType === 1) { return [location]; }
    if (location && typeof location.length === "number") { return Array.prototype.slice.call(location); }  // jQuery
    return [];
  }

  function codeOf(args, input) {
    if (args.code !== undefined) { return String(args.code); }
    var source = null;
    if (args.codeLocation !== undefined) {
      source = elements(args.codeLocation)[0];
      return source ? source.textContent.trim() : "";
    }
    var child = Array.prototype.filter.call(input.children, function (c) { return c.tagName === "SCRIPT"; })[0];
    if (child) { return child.textContent.trim(); }
    if (input.tagName === "TEXTAREA") { return input.value.trim(); }
    return input.textContent.trim();
  }

  function make(args, cellInfo, linkKey) {
    var inputs = elements(args.inputLocation);
    if (inputs.length === 0) { return; }
    if (inputs.length > 1) {
      if (args.outputLocation !== undefined) { throw "inputLocation must be unique if outputLocation is specified"; }
      cellInfo.array = inputs.map(function (input) {
        var one = {};
        // As SageMathCell: linked cells of one call are evaluated by hand, in the order the reader chooses.
        make(Object.assign({}, args, {inputLocation: input}, args.linked ? {autoeval: false} : {}), one, linkKey);
        return one;
      });
      return;
    }
    var input = inputs[0];
    if (input.__sagecellInitialized) { return; }
    input.__sagecellInitialized = true;
    var template = args.template || {};
    Object.assign(cellInfo, {editor: "codemirror", evalButtonText: "Evaluate", mode: "normal", replaceOutput: true,
      languages: ["sage"]}, template, args);
    var hide = cellInfo.hide = HIDDEN_BY_DEFAULT.concat(template.hide || [], args.hide || []);
    cellInfo.code = codeOf(args, input);
    var languages = cellInfo.languages = (cellInfo.languages || ["sage"]).map(function (l) { return String(l).toLowerCase(); });
    if (languages.indexOf(cellInfo.defaultLanguage) === -1) { cellInfo.defaultLanguage = languages[0]; }
    if (languages.length === 1) { hide.push("language"); }
    if (cellInfo.linked) { hide.push("permalink"); }

    var holder = document.createElement("div");
    holder.className = "sagecell";
    if (input.tagName === "TEXTAREA") {
      input.parentNode.insertBefore(holder, input);
      input.style.display = "none";
    } else {
      input.textContent = "";
      input.appendChild(holder);
    }
    var output = cellInfo.outputLocation !== undefined ? elements(cellInfo.outputLocation)[0] : null;
    if (output === input) { output = null; }
    var outputHolder = null;
    if (output) {
      outputHolder = document.createElement("div");
      outputHolder.className = "sagecell_output";
      output.appendChild(outputHolder);
    } else {
      cellInfo.outputLocation = cellInfo.inputLocation;
    }
    var cell = cellserver.makeCell({
      element: holder, outputElement: outputHolder, code: cellInfo.code, autoeval: false,
      linked: !!cellInfo.linked, linkKey: linkKey || undefined, hideShare: hide.indexOf("permalink") !== -1,
      hideEditor: hide.indexOf("editor") !== -1, evalButtonText: cellInfo.evalButtonText,
      readOnly: /readonly/.test(String(cellInfo.editor)),
      kernel_name: kernelGuess(cellInfo.defaultLanguage)
    });
    cellInfo.cell = cell;
    cellInfo.inputElement = input;
    cellInfo.outputElement = output || input;
    cellInfo.submit = function () { cell.run(); return false; };
    applyHide(cell, hide);
    var language = languagePicker(cell, cellInfo, hide.indexOf("language") === -1);
    cell.waitFor(language);  // a click before the node said which languages it has runs once it has
    // As SageMathCell: the code runs at once with autoeval, once its language is known.
    language.then(function () { if (cellInfo.code && cellInfo.autoeval) { cell.run(); } });
    if (cellInfo.callback) { cellInfo.callback(); }
  }

  /** The kernelspec a cell starts with before cell.kernelspecs() answers (then languagePicker settles it). */
  function kernelGuess(language) { return {sage: "sagemath", python: "python3", r: "ir"}[language] || "python3"; }

  /** SageMathCell's hideable parts that have an equivalent here; the others are ignored. */
  function applyHide(cell, hide) {
    var parts = {
      evalButton: [cell.runButton], permalink: [cell.shareButton],
      output: [cell.renderer.area], sessionFiles: [cell.filesBox]
    };
    // SageMathCell's cells have no restart or upload: neither have these. Interrupt stays (a loop need not run to
    // its timeout), but for cells without an editor or an evaluate button (the minimal template's).
    [cell.restartButton, cell.uploadInput].forEach(function (b) { b.hidden = true; });
    if (hide.indexOf("evalButton") !== -1 || hide.indexOf("editor") !== -1) { cell.interruptButton.hidden = true; }
    hide.forEach(function (name) { (parts[name] || []).forEach(function (node) { node.hidden = true; }); });
  }

  /**
   * The cell's language: SageMathCell's names in a picker of its own (only the ones the node offers), each mapped to
   * a kernelspec by cellserver.kernelNameFor; "html" shows the code as sanitized HTML. A Promise, settled once known.
   */
  function languagePicker(cell, cellInfo, shown) {
    var select = document.createElement("select");
    select.className = "cell-language sagecell_language";
    select.title = "The language this cell runs in";
    select.hidden = true;
    cell.languageSelect.parentNode.insertBefore(select, cell.languageSelect);
    var html = false;
    var run = cell.run;
    cell.run = function () {
      if (!html) { return run.call(cell); }
      cell.renderer.clear();  // the page renders it: no kernel, the same sanitizer as every output
      cell.renderer.add({output_type: "display_data", data: {"text/html": cell.editor.getValue()}});
      return Promise.resolve({status: "ok"});
    };
    return cellserver.kernelspecs().then(function (found) {
      var specs = found.kernelspecs || {};
      function kernelName(language) {
        var name = cellserver.kernelNameFor(language, specs);
        // A node without Sage runs Sage cells in Python (most short Sage examples are Python), and says so.
        return name || (language === "sage" ? "python3" : null);
      }
      var offered = cellInfo.languages.filter(function (l) { return l === "html" || kernelName(l); });
      offered.forEach(function (l) { select.appendChild(new Option(NAMES[l] || l, l)); });
      function choose(language) {
        html = language === "html";
        if (!html) { cell.setLanguage(kernelName(language)); }
        if (language === "sage" && !cellserver.kernelNameFor("sage", specs)) {
          cell.renderer.notice("This server has no Sage kernel: this cell runs in Python.", "notice-no-sage");
        }
        cellInfo.language = language;
      }
      select.onchange = function () { choose(select.value); };
      var first = offered.indexOf(cellInfo.defaultLanguage) !== -1 ? cellInfo.defaultLanguage : offered[0];
      if (!first) {
        cell.renderer.notice("This server offers none of this cell's languages (" + cellInfo.languages.join(", ") + ").", "notice-error");
        cell.runButton.disabled = true;
        throw new Error("no language");
      }
      select.value = first;
      choose(first);
      select.hidden = !shown || offered.length < 2;
    }, function (err) {
      cell.renderer.notice("The list of languages could not be loaded: " + ((err && err.args && err.args[0]) || err), "notice-error");
      throw err;
    });
  }

  /** sagecell.deleteSagecell(cellInfo): as SageMathCell, the cell's input and output elements go. */
  sagecell.deleteSagecell = function (cellInfo) {
    (cellInfo.array || [cellInfo]).forEach(function (info) {
      if (info.cell && !info.linked) { info.cell.kernel.release(); }
      [info.inputElement, info.outputElement].forEach(function (node) { if (node && node.parentNode) { node.remove(); } });
    });
  };
  /** sagecell.moveInputForm / restoreInputForm(cellInfo): the cell out of a form while the form is sent, and back. */
  sagecell.moveInputForm = function (cellInfo) {
    var moved = document.createElement("div");
    moved.id = "sagecell_moved";
    moved.style.display = "none";
    document.body.appendChild(moved);
    var input = cellInfo.inputElement;
    while (input && input.firstChild) { moved.appendChild(input.firstChild); }
  };
  sagecell.restoreInputForm = function (cellInfo) {
    var moved = document.getElementById("sagecell_moved");
    if (!moved) { return; }
    while (moved.firstChild) { cellInfo.inputElement.appendChild(moved.firstChild); }
    moved.remove();
  };
  sagecell.restore = sagecell.restoreInputForm;
})();
