#!/usr/bin/env bash
# Installs llama-cpp-python (the quantized generator backend, ragsys/generate/llama.py) into a venv.
#
#   bash scripts/install-llama-cpp.sh .venv/bin/python
#
# PyPI ships llama-cpp-python as source only, so it is compiled here (about 3.5 min on 2 cores)
# into a wheel cached under ~/.cache/ragsys/wheels, keyed by version and CPU flags: the next
# install on the same kind of machine takes seconds. The build targets the instruction sets this
# CPU reports (AVX2, AVX-512, VNNI, BF16) with GGML_NATIVE off and AMX off: the native build
# with AMX tiles segfaults on its first eval on the Xeons this project runs on, while the
# AVX-512 VNNI kernels run the Q4/Q8 models at full speed there.
#
# The backend is optional: when the build fails (no compiler, an exotic CPU), ragsys answers
# through transformers and says why. So a failure here warns and exits 0.
set -uo pipefail
PY="${1:?usage: install-llama-cpp.sh PYTHON}"
VERSION="${LLAMA_CPP_VERSION:-0.3.36}"

if "$PY" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null; then
  exit 0
fi

flags=""
cpu="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
has() { [[ " $cpu " == *" $1 "* ]]; }
if [ "$(uname -m)" = x86_64 ]; then
  flags="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx512f:AVX512 avx512vbmi:AVX512_VBMI \
              avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if has "${pair%%:*}"; then flags="$flags -DGGML_${pair#*:}=ON"; else flags="$flags -DGGML_${pair#*:}=OFF"; fi
  done
fi
flags="$flags -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF"
key="$(printf '%s' "$VERSION $flags" | sha256sum | cut -c1-12)"
cache="${RAGSYS_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ragsys/wheels}/llama-cpp-python-$VERSION-$key"

if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "ragsys: building llama-cpp-python $VERSION for this CPU (about 3.5 min, once): $flags"
  tmp="$(mktemp -d)"
  if CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$PY" -m pip wheel -q --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$tmp"; then
    mkdir -p "$(dirname "$cache")" && rm -rf "$cache" && mv "$tmp" "$cache"
  else
    rm -rf "$tmp"
    echo "ragsys: WARNING: llama-cpp-python did not build; generation will use transformers (slower)" >&2
    exit 0
  fi
fi
# [server]: the OpenAI-compatible server the HTTP generator backend is tested against.
whl="$(ls "$cache"/llama_cpp_python-*.whl | head -1)"
"$PY" -m pip install -q "$whl[server]" \
  || echo "ragsys: WARNING: llama-cpp-python did not install; generation will use transformers" >&2
