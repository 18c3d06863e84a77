// Status texts of the codec core. Messages and codes are part of the
// contract with the binding (which turns them into typed JS errors) and with
// logs: they are stable and never carry user data.
#include "fec/codec.h"

namespace rqcast {
namespace fec {

const char* status_message(Status s) {
  switch (s) {
    case Status::kOk:
      return "ok";
    case Status::kNeedMoreSymbols:
      return "more symbols are needed to decode the block";
    case Status::kInvalidArgument:
      return "invalid argument";
    case Status::kBadPacketLength:
      return "packet length is not 4 + T bytes";
    case Status::kSbnOutOfRange:
      return "source block number out of range";
    case Status::kEsiOutOfRange:
      return "encoding symbol id out of range";
    case Status::kOtiOutOfBounds:
      return "object transmission information out of bounds";
    case Status::kTransferTooLong:
      return "transfer length exceeds 946270874880 bytes";
    case Status::kSymbolSizeNotAligned:
      return "symbol size is not a multiple of the alignment";
    case Status::kTooManySourceSymbols:
      return "source block has more than 56403 symbols";
    case Status::kSubSymbolTooSmall:
      return "sub-symbol smaller than the alignment";
    case Status::kOutOfMemory:
      return "out of memory";
    case Status::kIoError:
      return "reading the object's file failed";
    case Status::kSourceTruncated:
      return "the object's file is shorter than its transfer length";
  }
  return "unknown status";
}

const char* status_code(Status s) {
  switch (s) {
    case Status::kOk:
      return "OK";
    case Status::kNeedMoreSymbols:
      return "ERR_RQ_NEED_MORE_SYMBOLS";
    case Status::kInvalidArgument:
      return "ERR_RQ_INVALID_ARGUMENT";
    case Status::kBadPacketLength:
      return "ERR_RQ_BAD_PACKET_LENGTH";
    case Status::kSbnOutOfRange:
      return "ERR_RQ_SBN_OUT_OF_RANGE";
    case Status::kEsiOutOfRange:
      return "ERR_RQ_ESI_OUT_OF_RANGE";
    case Status::kOtiOutOfBounds:
      return "ERR_RQ_OTI_OUT_OF_BOUNDS";
    case Status::kTransferTooLong:
      return "ERR_RQ_TRANSFER_TOO_LONG";
    case Status::kSymbolSizeNotAligned:
      return "ERR_RQ_SYMBOL_SIZE_NOT_ALIGNED";
    case Status::kTooManySourceSymbols:
      return "ERR_RQ_TOO_MANY_SOURCE_SYMBOLS";
    case Status::kSubSymbolTooSmall:
      return "ERR_RQ_SUB_SYMBOL_TOO_SMALL";
    case Status::kOutOfMemory:
      return "ERR_RQ_OUT_OF_MEMORY";
    case Status::kIoError:
      return "ERR_RQ_IO";
    case Status::kSourceTruncated:
      return "ERR_RQ_SOURCE_TRUNCATED";
  }
  return "ERR_RQ_UNKNOWN";
}

}  // namespace fec
}  // namespace rqcast
