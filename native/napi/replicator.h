// What other bindings need of a JS Replicator object: its engine (a TCP
// server adds its connections to the engine's channels as sinks).
#pragma once

#include <napi.h>

#include <memory>

#include "replicate/engine.h"

namespace rqcast {
namespace napi {

// The engine of `value`, a Replicator made by this addon (checked by a type
// tag, not by duck typing). The engine stays alive as long as the returned
// pointer does, even if the Replicator is closed (its calls then return
// ESHUTDOWN). Null, with a JS error thrown, for anything else.
std::shared_ptr<replicate::Engine> ReplicatorEngine(Napi::Env env, Napi::Value value);

}  // namespace napi
}  // namespace rqcast
