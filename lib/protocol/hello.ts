/**
 * HELLO (type 1), client -> server: asks for a cookie.
 *
 *   header(8) | nonce(8) | padding (zeros) up to at least HELLO_MIN_SIZE
 *
 * The padding is what makes the exchange amplification-free: the COOKIE (or
 * ERROR) reply is never longer than HELLO_MIN_SIZE. Padding bytes are sent
 * as zero and ignored on receipt.
 */
import { ByteWriter } from './bytes';
import { ControlHeader, ControlReader, HELLO_MIN_SIZE, NONCE_SIZE } from './control-header';
import { ProtocolEncodeError } from './errors';
import { HelloMessage, MessageType } from './messages';

export function checkNonce(nonce: Uint8Array): void {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_SIZE) {
    throw new ProtocolEncodeError(`nonce must be ${NONCE_SIZE} bytes`);
  }
}

export function writeHelloBody(w: ByteWriter, msg: HelloMessage): void {
  checkNonce(msg.nonce);
  w.bytes(msg.nonce);
  if (w.offset < HELLO_MIN_SIZE) w.zeros(HELLO_MIN_SIZE - w.offset);
}

export function readHelloBody(r: ControlReader, header: ControlHeader): HelloMessage {
  if (header.totalLength < HELLO_MIN_SIZE) r.fail('hello-too-short');
  const nonce = r.take(NONCE_SIZE).slice();
  r.skip(r.remaining); // padding
  return { type: MessageType.Hello, nonce };
}
