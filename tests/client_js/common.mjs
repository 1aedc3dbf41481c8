// Shared by the scripts tests/test_client_js.py runs with node: the client as its users import it, and the answer.
export * from "../../clients/js/src/cellclient.js";

/** Print what the test checks (one JSON line) and end. */
export function report(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
  process.exit(0);
}

/** What an error looks like from outside: its class, whether it is a CellError, its URI and message. */
export function described(error, errors) {
  return {
    class: error.constructor.name,
    cell: error instanceof errors.CellError,
    uri: error.uri,
    message: error.message,
    details: error.details,
  };
}

/** The error `promise` rejects with, described (null when it does not reject). */
export async function failure(promise, errors) {
  try {
    await promise;
    return null;
  } catch (e) {
    return described(e, errors);
  }
}
