/**
 * Errors of the cellserver client, one class per `cell.error.*` URI (docs/api.md, "Errors").
 *
 * Every error the node sends comes out as an instance of one of these, so callers catch by class:
 *
 *     try { await kernel.files.read("../x"); } catch (e) { if (e instanceof InvalidArgument) ... }
 *
 * `uri` is the WAMP error URI, `message` what the node said (a sentence a person can act on), `details` its keyword
 * arguments (e.g. `limit`, `available`).
 */

export class CellError extends Error {
  constructor(message, { uri = new.target.uri, details = {}, args = [] } = {}) {
    super(message);
    this.name = new.target.name;
    this.uri = uri;
    this.details = details;
    this.args = args;
  }
}
/** the URI an error of this class made by the client itself carries */
CellError.uri = "cell.error";

/** the class of each error URI the node answers with (filled by `kind` below) */
const BY_URI = new Map();

/**
 * The error class `name` for the WAMP error `uri`, a subclass of `base`; `fromWamp` turns `uri` and the URIs in
 * `also` into it (`answered: false`: a class the client makes itself, whose URI stays another class's).
 */
function kind(name, uri, { base = CellError, also = [], answered = true } = {}) {
  const cls = { [name]: class extends base {} }[name];
  cls.uri = uri;
  for (const each of answered ? [uri, ...also] : also) {
    BY_URI.set(each, cls);
  }
  return cls;
}

/** Missing, unknown or wrongly typed arguments. */
export const InvalidArgument = kind("InvalidArgument", "cell.error.invalid_argument", {
  also: ["wamp.error.invalid_argument"],
});
/** An unknown or dead kernel, a kernel of another session, a language nobody offers. */
export const NotFound = kind("NotFound", "cell.error.not_found", { also: ["wamp.error.no_such_procedure"] });
/** A cap or quota was reached, or no worker has room now. */
export const Capacity = kind("Capacity", "cell.error.capacity");
/** Code, a file or an argument past its limit. */
export const TooLarge = kind("TooLarge", "cell.error.too_large");
/** The kernel died (or was restarted) while the call was pending. */
export const KernelDied = kind("KernelDied", "cell.error.kernel_died");
/** The kernel did not answer in time; a run past its timeout is a result, not this. */
export const Timeout = kind("Timeout", "cell.error.timeout");
/** A part of the node (or the node itself) cannot answer now. */
export const Unavailable = kind("Unavailable", "cell.error.unavailable");
/** The connection dropped and could not be brought back, or took with it a call that cannot be resumed. */
export const ConnectionLost = kind("ConnectionLost", "cell.error.unavailable", { base: Unavailable, answered: false });
/** The role may not do this, or the credential or the login was refused. */
export const NotAuthorized = kind("NotAuthorized", "wamp.error.not_authorized", {
  also: [
    "cell.error.not_authorized",
    "wamp.error.authorization_failed",
    "wamp.error.authentication_failed",
    "wamp.error.no_auth_method",
  ],
});
/** The call was cancelled. */
export const Cancelled = kind("Cancelled", "wamp.error.canceled");

/** The error class of a WAMP error URI (CellError for one this client does not know). */
export function errorClass(uri) {
  return BY_URI.get(uri) || CellError;
}

/** What autobahn rejected a call with (an autobahn.Error, a thrown string, an Error) as a CellError. */
export function fromWamp(err) {
  if (err instanceof CellError) {
    return err;
  }
  if (err && typeof err.error === "string") {
    const args = Array.isArray(err.args) ? err.args : [];
    const message = typeof args[0] === "string" ? args[0] : err.error;
    const Cls = errorClass(err.error);
    return new Cls(message, { uri: err.error, details: err.kwargs || {}, args });
  }
  if (err === "session not open") {
    return new ConnectionLost("the connection to the node is closed", { uri: "cell.error.unavailable" });
  }
  if (err instanceof Error) {
    return err;
  }
  return new CellError(String(err));
}
