/**
 * Errors a user can act on. Every layer throws these with a message written for a person;
 * the CLI prints the message and exits non-zero, the server maps `status` to the HTTP reply.
 */
export class HematoError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Not an image, truncated, unsupported format, too large. */
export class InvalidImageError extends HematoError {
  constructor(message: string, code = 'invalid_image', status = 400) {
    super(message, code, status);
  }
}

/** Missing, unreadable or tampered model file or model card. */
export class ModelError extends HematoError {
  constructor(message: string, code = 'model_error') {
    super(message, code, 500);
  }
}

/** Missing or empty data folder, unknown class names. */
export class DatasetError extends HematoError {
  constructor(message: string, code = 'dataset_error') {
    super(message, code, 400);
  }
}
