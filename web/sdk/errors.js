/** An error from the server or from the SDK, with the server's code when there is one. */
export class RoomError extends Error {
  constructor(message, { code = 'client', closeCode, closeReason, request } = {}) {
    super(message);
    this.name = 'RoomError';
    this.code = code;
    this.closeCode = closeCode;
    this.closeReason = closeReason;
    this.request = request;
  }
}
