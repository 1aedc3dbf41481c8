/* The browser files a cell needs, in load order: shared by index.html (through embed.js) and other pages. */
window.CELLSERVER_ASSETS = {
  css: [
    "node_modules/codemirror/lib/codemirror.css",
    "node_modules/codemirror/addon/hint/show-hint.css",
    "node_modules/katex/dist/katex.min.css",
    "widgets/dist/index.css",
    "cell.css"
  ],
  js: [
    "node_modules/autobahn-browser/autobahn.min.js",
    "node_modules/codemirror/lib/codemirror.js",
    "node_modules/codemirror/mode/python/python.js",
    "node_modules/codemirror/mode/r/r.js",
    "node_modules/codemirror/mode/shell/shell.js",
    "node_modules/codemirror/addon/edit/matchbrackets.js",
    "node_modules/codemirror/addon/hint/show-hint.js",
    "node_modules/dompurify/dist/purify.min.js",
    "sanitize.js",
    "node_modules/marked/lib/marked.umd.js",
    "node_modules/ansi_up/ansi_up.js",
    "node_modules/katex/dist/katex.min.js",
    "node_modules/katex/dist/contrib/auto-render.min.js",
    "node_modules/pako/dist/pako.min.js",
    "widgets/dist/index.js",
    "uris.js",
    "sage.js",
    "cell.js"
  ]
};
