/* WAMP URIs, mirrored from components/uris.py. */
window.CELLSERVER_URIS = {
  KERNEL_START: "cell.kernel.start",
  KERNEL_RESUME: "cell.kernel.resume",
  EXECUTE_ONCE: "cell.execute",
  STATUS: "cell.status",
  KERNELSPECS: "cell.kernelspecs",
  PERMALINK_SAVE: "cell.permalink.save",
  PERMALINK_GET: "cell.permalink.get",
  kernel: function (kernelId, name) { return "cell.kernel." + kernelId + "." + name; },
  iopub: function (kernelId) { return "cell.kernel." + kernelId + ".iopub"; }
};
