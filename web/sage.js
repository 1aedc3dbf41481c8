/*
 * Sage's rich output in a cell (cell.js asks this module first for each MIME bundle):
 *  - show() and %display latex: Sage sends text/html "<html>\(\displaystyle TeX\)</html>" (and text/latex), typeset
 *    here by KaTeX with Sage's TeX macros (\Bold, \ZZ, \QQ, \GF{p}, ...); TeX that KaTeX cannot typeset (Sage's
 *    Young diagrams use \multicolumn and \cline, which MathJax lacks as well) shows the text/plain form instead;
 *  - 3D graphics: Sage's notebook backend sends one <iframe srcdoc="the viewer's whole page">. That one shape gets
 *    a frame of the node's (sage3d/frame.html) with sandbox="allow-scripts" and no allow-same-origin: an opaque
 *    origin, so the viewer's script (or a kernel's forgery of it) cannot reach the page, its cookies, storage or
 *    WAMP session; the page hands it the srcdoc by postMessage and the frame loads Three.js from the node.
 * Every other HTML output goes through sanitize.js as before.
 */
(function (global) {
  "use strict";
  var api = global.cellserver = global.cellserver || {};
  var base = api.base || (global.location.origin + "/");

  /** Sage's TeX macros (sage.misc.latex_macros.sage_mathjax_macros), as KaTeX macros. */
  var MACROS = {
    "\\Bold": "\\mathbf{#1}", "\\ZZ": "\\Bold{Z}", "\\NN": "\\Bold{N}", "\\RR": "\\Bold{R}", "\\CC": "\\Bold{C}",
    "\\QQ": "\\Bold{Q}", "\\QQbar": "\\overline{\\QQ}", "\\GF": "\\Bold{F}_{#1}", "\\Zp": "\\Bold{Z}_{#1}",
    "\\Qp": "\\Bold{Q}_{#1}", "\\Zmod": "\\ZZ/#1\\ZZ", "\\CDF": "\\Bold{C}", "\\CIF": "\\Bold{C}", "\\CLF": "\\Bold{C}",
    "\\RDF": "\\Bold{R}", "\\RIF": "\\Bold{I} \\Bold{R}", "\\RLF": "\\Bold{R}", "\\SL": "\\mathrm{SL}",
    "\\PSL": "\\mathrm{PSL}", "\\lcm": "\\mathop{\\operatorname{lcm}}", "\\dist": "\\mathrm{dist}",
    "\\im": "\\mathop{\\operatorname{im}}", "\\rank": "\\mathop{\\operatorname{rank}}", "\\PP": "\\Bold{P}",
    "\\OO": "\\mathcal{O}"
  };

  /**
   * TeX as KaTeX takes it: Sage defines \Bold in each formula (\newcommand{\Bold}[1]{\mathbf{#1}}), which KaTeX
   * refuses for a macro it already has, so a definition of one of Sage's macros becomes a redefinition.
   */
  function preProcess(tex) {
    return String(tex).replace(/\\newcommand\s*(\{\s*)?(\\[A-Za-z]+)/g, function (all, brace, name) {
      return Object.prototype.hasOwnProperty.call(MACROS, name) ? "\\renewcommand" + (brace || "") + name : all;
    });
  }

  /** KaTeX options with Sage's macros (a fresh copy each time: a formula's \gdef stays in its own output). */
  function mathOptions(options) {
    var merged = {macros: Object.assign({}, MACROS), preProcess: preProcess};
    return Object.assign(merged, options || {});
  }

  var DELIMITERS = [
    {left: "$$", right: "$$", display: true}, {left: "$", right: "$", display: false},
    {left: "\\(", right: "\\)", display: false}, {left: "\\[", right: "\\]", display: true}];

  /** The math in a node's text typeset by KaTeX (for outputs inside an Output widget, e.g. a Sage @interact's). */
  function typeset(node) {
    if (!global.renderMathInElement) { return; }
    try {
      global.renderMathInElement(node, mathOptions({delimiters: DELIMITERS, throwOnError: false}));
    } catch (e) { /* leave the text as it is */ }
  }

  function joined(v) { return Array.isArray(v) ? v.join("") : (v || ""); }

  var SAGE_MATH = /^\s*<html>\s*\\\(([\s\S]*)\\\)\s*<\/html>\s*$/;

  /** show()'s output typeset, or its text/plain where KaTeX cannot; null when C{html} is not Sage's math. */
  function math(html, plain) {
    var found = SAGE_MATH.exec(html);
    if (!found || !global.katex) { return null; }
    // the TeX as HTML text (Sage escapes < and & in it); parsed inertly, markup in it dropped as the sanitizer would
    var tex = new DOMParser().parseFromString(found[1], "text/html").body.textContent;
    var node = document.createElement("div");
    node.className = "output-html output-sage-math";
    try {
      global.katex.render(preProcess(tex), node, mathOptions({throwOnError: true}));
    } catch (e) {
      node.className = "output-text output-sage-math-text";
      node.textContent = plain || tex;
      node.title = "KaTeX could not typeset this: " + (e && e.message);
    }
    return node;
  }

  /** The page of Sage's 3D viewer and its height when C{html} is Sage's <iframe srcdoc>, else null. */
  function viewer(html) {
    if (!/^\s*<iframe\s+srcdoc=/i.test(html)) { return null; }
    var doc = new DOMParser().parseFromString(html, "text/html");  // inert: nothing in it loads or runs
    var frame = doc.body.firstElementChild;
    if (doc.body.children.length !== 1 || frame.tagName !== "IFRAME" || doc.body.textContent.trim() !== "") { return null; }
    var page = frame.getAttribute("srcdoc") || "";
    if (page.indexOf("THREE") < 0) { return null; }
    var height = parseInt(frame.getAttribute("height"), 10);
    return {page: page, height: Math.min(Math.max(isNaN(height) ? 400 : height, 100), 2000)};
  }

  /** Sage's 3D viewer in a sandboxed frame of the node's (see the top of this file). */
  function viewer3d(scene) {
    var frame = document.createElement("iframe");
    frame.className = "output-sage3d";
    frame.setAttribute("sandbox", "allow-scripts");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.title = "3D graphics";
    frame.style.height = scene.height + "px";
    // Each time frame.html loads (again when the frame is moved in the page); the viewer's page, once written, ignores
    // it. The scene is the kernel's own: whatever document gets it learns nothing new. An opaque origin has no name.
    frame.addEventListener("load", function () { frame.contentWindow.postMessage({sage3d: scene.page}, "*"); });
    frame.src = base + "sage3d/frame.html";
    return frame;
  }

  /** A node for one MIME bundle when it is Sage's (typeset math, a 3D viewer), else null. */
  function render(data) {
    var html = data["text/html"];
    if (!html) { return null; }
    html = joined(html);
    var scene = viewer(html);
    if (scene) { return viewer3d(scene); }
    return math(html, joined(data["text/plain"]));
  }

  global.CELLSERVER_SAGE = {render: render, mathOptions: mathOptions, typeset: typeset};
})(window);
