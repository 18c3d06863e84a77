// rqcast.node entry point: each concept registers its own classes.
#include <napi.h>

#include "napi/register.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  rqcast::napi::RegisterCodec(env, exports);
  rqcast::napi::RegisterReplicator(env, exports);
  rqcast::napi::RegisterReceiver(env, exports);
  rqcast::napi::RegisterTcpServer(env, exports);
  rqcast::napi::RegisterFileWrites(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(rqcast, Init)
