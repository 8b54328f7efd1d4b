/** What a client is told of a failure (the public fields of any door's error). */
export interface FailureData {
  code: string;
  message: string;
  reason?: string | null;
  zodError?: { fieldErrors?: Record<string, string[] | undefined> } | null;
}

/**
 * A failure as one line: the stable reason code first (else the error code), then the
 * invalid fields or the message. The CLI prints it, the tools answer it.
 */
export function failureLine({ code, message, reason, zodError }: FailureData): string {
  const fields = Object.entries(zodError?.fieldErrors ?? {}).map(([field, problems]) => `${field}: ${(problems ?? []).join(", ")}`);
  return `${reason ?? code}: ${fields.length > 0 ? fields.join("; ") : message}`;
}
