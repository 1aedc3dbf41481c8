/* The page's one cell (index.html), with the code of a ?q= or ?z= link. A file, not inline: the page's policy
 * (index.html's Content-Security-Policy) runs only scripts of this origin's files. */
cellserver.onready = function () {
  var cell = cellserver.makeCell({element: "#cell", code: "", languagePicker: true});
  window.cellserverPage = cell;
  cellserver.sourceFromLocation(location.search).then(function (source) {
    if (source !== null) { cell.setCode(source.code); cell.setLanguage(source.kernel_name); }
    document.body.setAttribute("data-ready", "1");
  }, function (err) {
    cell.renderer.notice("This link's code could not be loaded: " + ((err && err.args && err.args[0]) || err), "notice-error");
    document.body.setAttribute("data-ready", "1");
  });
};
