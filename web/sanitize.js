/*
 * The one sanitizer of what kernels send as HTML, SVG or Markdown: the cell's outputs (cell.js) and the widgets
 * (widgets/index.js: HTML, HTMLMath, descriptions, the Output widget's renderers) all pass through it, so no output
 * runs script in the page, or in the page of a site that embeds a cell. DOMPurify (npm) does the work.
 */
(function (global) {
  "use strict";

  /** Text as HTML that shows it literally: what is left when DOMPurify is missing (fail closed). */
  function escapeText(text) {
    var node = global.document.createElement("div");
    node.textContent = text;
    return node.innerHTML;
  }

  function purifier(config) {
    return function (dirty) {
      var source = dirty === null || dirty === undefined ? "" : String(dirty);
      var purify = global.DOMPurify;
      if (!purify || !purify.isSupported) { return escapeText(source); }
      return purify.sanitize(source, config);
    };
  }

  global.CELLSERVER_SANITIZE = {
    /** HTML (and Markdown once rendered) for an element's innerHTML: no script, handler, frame or javascript: URL. */
    html: purifier({}),
    /** An SVG document for an element's innerHTML, with SVG's own elements and filters kept. */
    svg: purifier({USE_PROFILES: {svg: true, svgFilters: true}}),
    escapeText: escapeText
  };
})(window);
