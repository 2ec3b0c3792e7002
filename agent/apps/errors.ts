import { FortError } from '../../lib/errors.js';

/**
 * Something a client asked for does not exist: an app, or a table of an app version.
 * The client API answers 404 with `code`; `message` never carries a file path.
 */
export class NotFoundError extends FortError {
  constructor(message: string) {
    super('FORT_ERR_NOT_FOUND', message);
  }
}
