export { ObjectEncoder, EncoderOptions, PAYLOAD_ID_SIZE, MAX_ESI, chooseOti } from './encoder';
export { ObjectDecoder, BatchOptions, BatchResult, BlockProgress } from './decoder';
export {
  Oti,
  OtiFields,
  DeriveOptions,
  ObjectLayout,
  OTI_SIZE,
  DEFAULT_ALIGNMENT,
  DEFAULT_MAX_SUB_BLOCK_SIZE,
  DEFAULT_PAYLOAD_SIZE,
} from './oti';
export { rfcRand, rfcDeg, rfcTuple, systematicParams, rfcPartition, statusCodes, SystematicParams, Tuple, Partition } from './rfc';
export { gf256Kernel, gf256Kernels, setGf256Kernel, codecPhaseCounters, CodecPhaseCounters } from './gf256';
export * from './errors';
