/** A refused operator or device operation; `kind` picks the HTTP status (404, 409, 400). */
export class MenderOpError extends Error {
  constructor(
    readonly kind: 'not_found' | 'conflict' | 'bad_request',
    message: string,
  ) {
    super(message);
    this.name = 'MenderOpError';
  }
}

export const HTTP_STATUS: Record<MenderOpError['kind'], 400 | 404 | 409> = {
  bad_request: 400,
  not_found: 404,
  conflict: 409,
};
