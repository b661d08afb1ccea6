import type { Socket } from 'node:net';
import type { DiskReader } from '../partition-table.js';
import {
  CLIENT_FLAGS_KNOWN,
  HANDSHAKE_NO_ZEROES,
  IHAVEOPT,
  INFO,
  MAX_STRING_LENGTH,
  OPT,
  REP,
  blockSizeInfo,
  exportInfo,
  exportNameReply,
  greeting,
  nameInfo,
  optionReply,
  serverEntry,
} from './protocol.js';
import type { SocketReader } from './socket-reader.js';

/** The export a client chose, and how: transmission serves it. */
export interface ChosenExport {
  readonly name: string;
  readonly disk: DiskReader;
  /** The client asked for structured replies (NBD_OPT_STRUCTURED_REPLY) and got them. */
  readonly structuredReplies: boolean;
}

/**
 * The longest option data read: a name of the protocol's longest and a generous list of info
 * requests. Longer options are discarded unread and refused, so a client cannot make the server
 * hold more than this per connection while haggling.
 */
const MAX_OPTION_LENGTH = MAX_STRING_LENGTH + 4096;
const KNOWN_OPTIONS: ReadonlySet<number> = new Set(Object.values(OPT));

/**
 * The fixed-newstyle handshake and option haggling. Resolves with the export to serve (after
 * NBD_OPT_GO or NBD_OPT_EXPORT_NAME), or `undefined` when the connection is to be closed: the
 * client aborted, set client flags this server does not know, sent a wrong option magic, or
 * asked NBD_OPT_EXPORT_NAME for an export that does not exist (that option has no error reply).
 */
export async function negotiate(
  socket: Socket,
  reader: SocketReader,
  exports: ReadonlyMap<string, DiskReader>,
): Promise<ChosenExport | undefined> {
  socket.write(greeting());
  const clientFlags = (await reader.read(4)).readUInt32BE(0);
  if ((clientFlags & ~CLIENT_FLAGS_KNOWN) !== 0) return undefined;
  const noZeroes = (clientFlags & HANDSHAKE_NO_ZEROES) !== 0;
  let structuredReplies = false;
  for (;;) {
    const header = await reader.read(16);
    if (header.readBigUInt64BE(0) !== IHAVEOPT) return undefined;
    const option = header.readUInt32BE(8);
    const length = header.readUInt32BE(12);
    if (length > MAX_OPTION_LENGTH) {
      if (option === OPT.EXPORT_NAME) return undefined;
      await reader.skip(length);
      socket.write(
        optionReply(option, KNOWN_OPTIONS.has(option) ? REP.ERR_TOO_BIG : REP.ERR_UNSUP),
      );
      continue;
    }
    const data = await reader.read(length);
    switch (option) {
      case OPT.EXPORT_NAME: {
        const found = findExport(exports, data.toString('utf8'));
        if (!found) return undefined;
        socket.write(exportNameReply(found.disk.size, noZeroes));
        return { ...found, structuredReplies };
      }
      case OPT.GO:
      case OPT.INFO: {
        const found = answerInfo(socket, option, data, exports);
        if (found && option === OPT.GO) return { ...found, structuredReplies };
        break;
      }
      case OPT.LIST:
        if (length !== 0) socket.write(optionReply(option, REP.ERR_INVALID));
        else {
          for (const name of exports.keys())
            socket.write(optionReply(option, REP.SERVER, serverEntry(name)));
          socket.write(optionReply(option, REP.ACK));
        }
        break;
      case OPT.STRUCTURED_REPLY:
        structuredReplies = length === 0;
        socket.write(optionReply(option, structuredReplies ? REP.ACK : REP.ERR_INVALID));
        break;
      case OPT.ABORT:
        socket.write(optionReply(option, REP.ACK));
        return undefined;
      default:
        // TLS, meta contexts (block status), extended headers and everything newer are not
        // offered; clients carry on without them.
        socket.write(optionReply(option, REP.ERR_UNSUP));
    }
  }
}

type NamedDisk = Omit<ChosenExport, 'structuredReplies'>;

/** Answers NBD_OPT_INFO or NBD_OPT_GO; returns the export when the answer was ACK. */
function answerInfo(
  socket: Socket,
  option: number,
  data: Buffer,
  exports: ReadonlyMap<string, DiskReader>,
): NamedDisk | undefined {
  const request = parseInfoRequest(data);
  if (!request) {
    socket.write(optionReply(option, REP.ERR_INVALID));
    return undefined;
  }
  const chosen = findExport(exports, request.name);
  if (!chosen) {
    socket.write(optionReply(option, REP.ERR_UNKNOWN));
    return undefined;
  }
  socket.write(optionReply(option, REP.INFO, exportInfo(chosen.disk.size)));
  if (request.wanted.includes(INFO.NAME))
    socket.write(optionReply(option, REP.INFO, nameInfo(chosen.name)));
  // Sent whether asked or not: a minimum of 1 constrains nothing, and clients that read it
  // learn the 32 MiB limit instead of discovering it by an error.
  socket.write(optionReply(option, REP.INFO, blockSizeInfo()));
  socket.write(optionReply(option, REP.ACK));
  return chosen;
}

/** The data of NBD_OPT_INFO and NBD_OPT_GO: a name, then a counted list of info types. */
function parseInfoRequest(data: Buffer): { name: string; wanted: number[] } | undefined {
  if (data.length < 6) return undefined;
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 6) return undefined;
  const count = data.readUInt16BE(4 + nameLength);
  if (data.length !== 6 + nameLength + 2 * count) return undefined;
  const wanted: number[] = [];
  for (let i = 0; i < count; i++) wanted.push(data.readUInt16BE(6 + nameLength + 2 * i));
  return { name: data.subarray(4, 4 + nameLength).toString('utf8'), wanted };
}

/** An export by name; the empty name (the protocol's "default export") picks a lone export. */
function findExport(exports: ReadonlyMap<string, DiskReader>, name: string): NamedDisk | undefined {
  const disk = exports.get(name);
  if (disk) return { name, disk };
  if (name === '' && exports.size === 1) {
    const [only] = exports;
    return only && { name: only[0], disk: only[1] };
  }
  return undefined;
}
