// @ts-check
// The one error type the SDK throws and reports.

/** An error from the server or from the SDK, with the server's code when there is one. */
export class RoomError extends Error {
  /**
   * @param {string} message
   * @param {object} [details]
   * @param {string} [details.code] the server's error code, a close code's name, or the SDK's own
   *   ('client', 'timeout', 'closed', ...)
   * @param {number} [details.closeCode] the socket's close code, when it closed
   * @param {string} [details.closeReason]
   * @param {string} [details.request] the request type a server error is about
   * @param {string} [details.redirectUrl] where a `redirect` sent the client (code 'redirected')
   */
  constructor(message, { code = 'client', closeCode, closeReason, request, redirectUrl } = {}) {
    super(message);
    this.name = 'RoomError';
    this.code = code;
    this.closeCode = closeCode;
    this.closeReason = closeReason;
    this.request = request;
    this.redirectUrl = redirectUrl;
  }
}
