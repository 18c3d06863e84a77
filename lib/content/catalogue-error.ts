/**
 * CatalogueError, the base of the catalogue's errors (catalogue.ts), alone
 * in its file: the CLI's exit-code table (cli/exit-codes.ts), which every
 * command loads at its start, names it without loading the catalogue, its
 * encoder and its FDT builder (`rqcast fetch` needs none of them).
 */
import { ServerError } from '../errors';

/** A file the catalogue cannot serve (missing, unreadable, badly named, empty). */
export class CatalogueError extends ServerError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}
