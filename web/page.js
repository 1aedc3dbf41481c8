/* The page's one cell (index.html), with the code of a link: ?q=<id>, ?z=<zipped code>, ?c=<code> (SageMathCell's
 * forms too: &lang=<kernelspec or SageMathCell language>, &autoeval=false). A file, not inline: the page's policy
 * (index.html's Content-Security-Policy) runs only scripts of this origin's files. */
cellserver.onready = function () {
  var cell = cellserver.makeCell({element: "#cell", code: "", languagePicker: true});
  window.cellserverPage = cell;
  var params = new URLSearchParams(location.search);
  function done() { document.body.setAttribute("data-ready", "1"); }
  function notice(text) { cell.renderer.notice(text, "notice-error"); }
  cellserver.sourceFromLocation(location.search).then(function (source) {
    if (source === null) { return done(); }
    cell.setCode(source.code);
    // A link without lang is SageMathCell's: Sage where the node offers it (else Python).
    var wanted = source.kernel_name || "sage";
    return cellserver.kernelspecs().then(function (found) {
      var specs = found.kernelspecs || {};
      var name = cellserver.kernelNameFor(wanted, specs);
      if (!name && !source.kernel_name) { name = "python3"; }
      if (!name) {
        notice("This link's language " + wanted + " is not offered by this server.");
        return done();
      }
      cell.setLanguage(name);
      done();
      // As SageMathCell: a link's code runs at once unless it says autoeval=false.
      if (params.get("autoeval") !== "false") { cell.run(); }
    });
  }).catch(function (err) {
    notice("This link's code could not be loaded: " + ((err && err.args && err.args[0]) || (err && err.message) || err));
    done();
  });
};
