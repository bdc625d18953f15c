/**
 * An error of the web layer with a code that is not an engine error code (docs/rest-api.md):
 * BAD_REQUEST 400, UNAUTHORIZED 401, TOKEN_REQUIRED / CHAOS_DISABLED / FORBIDDEN 403, NOT_FOUND /
 * TASKMANAGER_NOT_FOUND 404, METHOD_NOT_ALLOWED 405, NOT_LOCAL / JOB_NOT_RUNNING 409. The web
 * server answers `{ code, message }` with `status`.
 */
export class HttpError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
