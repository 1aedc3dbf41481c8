/*
 * The frame of Sage's 3D viewer (frame.html, made by web/sage.js with sandbox="allow-scripts"): it waits for the
 * viewer's document from the page (a postMessage from its parent), points the document's Three.js script at the
 * node's copy instead of Jupyter's /nbextensions path or the CDN, and writes the document into itself.
 */
(function () {
  "use strict";
  var three = new URL("dist/three.js", document.currentScript.src).href;
  // passagemath's notebook backend loads /nbextensions/threejs-sage/r122/three.min.js and, when THREE is still
  // missing, https://cdn.jsdelivr.net/gh/sagemath/threejs-sage@r122/build/three.min.js; online=True only the latter.
  var SAGE_THREE = [
    /(?:https?:)?\/\/cdn\.jsdelivr\.net\/gh\/sagemath\/threejs-sage@[\w.-]+\/build\/three(?:\.min)?\.js/g,
    /\/nbextensions\/threejs-sage\/[\w.-]+\/three(?:\.min)?\.js/g
  ];
  var written = false;

  function withLocalThree(html) {
    return SAGE_THREE.reduce(function (text, pattern) { return text.replace(pattern, three); }, html);
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (written || event.source !== window.parent || !data || typeof data.sage3d !== "string") { return; }
    written = true;
    document.open();
    document.write(withLocalThree(data.sage3d));
    document.close();
  });
})();
