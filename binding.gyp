{
  # One addon, rqcast.node. The C++ core (native/fec, native/packet,
  # native/udp, native/replicate) includes no Node header; only native/napi
  # does.
  # No -march=native: SIMD kernels use per-function target attributes and
  # are chosen at run time (native/fec/gf256*.cc).
  "variables": {
    "fec_sources": [
      "<!@(ls -1 native/fec/*.cc)"
    ],
    "packet_sources": [
      "<!@(ls -1 native/packet/*.cc)"
    ],
    "replicate_sources": [
      "<!@(ls -1 native/udp/*.cc native/replicate/*.cc)"
    ],
    "tcp_sources": [
      "<!@(ls -1 native/tcp/*.cc)"
    ],
    "napi_sources": [
      "<!@(ls -1 native/napi/*.cc)"
    ]
  },
  "targets": [
    {
      "target_name": "rqcast",
      "sources": [
        "<@(fec_sources)",
        "<@(packet_sources)",
        "<@(replicate_sources)",
        "<@(tcp_sources)",
        "<@(napi_sources)"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-O3", "-fvisibility=hidden", "-fno-exceptions"],
      "ldflags": ["-pthread"]
    }
  ]
}
