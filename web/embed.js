/*
 * One <script src="http://HOST:PORT/embed.js"></script> turns divs of any page into live cells:
 *   cellserver.makeCell({element: "#x", code: "print(1)", autoeval: false, linked: false});
 * It loads its stylesheets and scripts from its own origin, in order, then runs the queued makeCell calls.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script.src.replace(/[^\/]*$/, "");
  var queue = [];
  var api = window.cellserver = window.cellserver || {};
  api.base = base;
  api.makeCell = function (options) { queue.push(options); };

  function load(list, i, done) {
    if (i >= list.length) { return done(); }
    var el = document.createElement("script");
    el.src = base + list[i];
    el.onload = function () { load(list, i + 1, done); };
    el.onerror = function () { console.error("cellserver: could not load " + el.src); };
    document.head.appendChild(el);
  }

  var assets = document.createElement("script");
  assets.src = base + "assets.js";
  assets.onload = function () {
    var a = window.CELLSERVER_ASSETS;
    a.css.forEach(function (href) {
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = base + href;
      document.head.appendChild(link);
    });
    load(a.js, 0, function () {
      api.makeCell = window.cellserver.makeCellNow;
      queue.forEach(function (options) { api.makeCell(options); });
      queue = [];
      if (api.onready) { api.onready(); }
    });
  };
  document.head.appendChild(assets);
})();
