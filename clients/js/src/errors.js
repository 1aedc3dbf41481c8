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

/** Missing, unknown or wrongly typed arguments (`cell.error.invalid_argument`). */
export class InvalidArgument extends CellError {
  static uri = "cell.error.invalid_argument";
}
/** An unknown or dead kernel, a kernel of another session, a language nobody offers (`cell.error.not_found`). */
export class NotFound extends CellError {
  static uri = "cell.error.not_found";
}
/** A cap or quota was reached, or no worker has room now (`cell.error.capacity`). */
export class Capacity extends CellError {
  static uri = "cell.error.capacity";
}
/** Code, a file or an argument past its limit (`cell.error.too_large`). */
export class TooLarge extends CellError {
  static uri = "cell.error.too_large";
}
/** The kernel died (or was restarted) while the call was pending (`cell.error.kernel_died`). */
export class KernelDied extends CellError {
  static uri = "cell.error.kernel_died";
}
/** The kernel did not answer in time (`cell.error.timeout`); a run past its timeout is a result, not this. */
export class Timeout extends CellError {
  static uri = "cell.error.timeout";
}
/** A part of the node (or the node itself) cannot answer now (`cell.error.unavailable`). */
export class Unavailable extends CellError {
  static uri = "cell.error.unavailable";
}
/** The connection dropped and could not be brought back, or took with it a call that cannot be resumed. */
export class ConnectionLost extends Unavailable {
  static uri = "cell.error.unavailable";
}
/** The role may not do this, or the credential was refused (`wamp.error.not_authorized` and friends). */
export class NotAuthorized extends CellError {
  static uri = "wamp.error.not_authorized";
}
/** The call was cancelled (`wamp.error.canceled`). */
export class Cancelled extends CellError {
  static uri = "wamp.error.canceled";
}

const BY_URI = {
  "cell.error.invalid_argument": InvalidArgument,
  "cell.error.not_found": NotFound,
  "cell.error.capacity": Capacity,
  "cell.error.too_large": TooLarge,
  "cell.error.kernel_died": KernelDied,
  "cell.error.timeout": Timeout,
  "cell.error.unavailable": Unavailable,
  "cell.error.not_authorized": NotAuthorized,
  "wamp.error.not_authorized": NotAuthorized,
  "wamp.error.authorization_failed": NotAuthorized,
  "wamp.error.authentication_failed": NotAuthorized,
  "wamp.error.no_auth_method": NotAuthorized,
  "wamp.error.canceled": Cancelled,
  "wamp.error.invalid_argument": InvalidArgument,
  "wamp.error.no_such_procedure": NotFound,
};

/** The error class of a WAMP error URI (CellError for one this client does not know). */
export function errorClass(uri) {
  return BY_URI[uri] || CellError;
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
