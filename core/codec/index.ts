export { ByteReader, ByteWriter, varintSize } from './bytes.js';
export {
  type Barrier,
  decodeBarrier,
  decodeEndOfInput,
  decodeRecords,
  decodeStatus,
  decodeWatermark,
  encodeBarrier,
  encodeEndOfInput,
  encodeStatus,
  encodeWatermark,
  FrameKind,
  FrameWriter,
  readFrameHeader,
} from './frames.js';
export { type CodecField, RowCodec } from './row-codec.js';
