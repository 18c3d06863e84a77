// SIMD GF(256) kernels, compiled with per-function target attributes and
// chosen at run time. (Filled in kernel by kernel; none yet.)
#include "fec/gf256_kernels.h"

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {

const std::vector<const Kernel*>& simd_kernels() {
  static const std::vector<const Kernel*> none;
  return none;
}

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast
