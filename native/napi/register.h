// One Register* function per binding concept; called from addon.cc.
#pragma once

#include <napi.h>

namespace rqcast {
namespace napi {

void RegisterCodec(Napi::Env env, Napi::Object exports);
void RegisterReplicator(Napi::Env env, Napi::Object exports);
void RegisterReceiver(Napi::Env env, Napi::Object exports);
void RegisterTcpServer(Napi::Env env, Napi::Object exports);
// After RegisterCodec (its jobs hold the environment's InFlight counter).
void RegisterFileWrites(Napi::Env env, Napi::Object exports);

}  // namespace napi
}  // namespace rqcast
