#!/usr/bin/env bash
# `npm run generate`: regenerates every client from proto/ with buf.gen.yaml, and the descriptor
# set that server reflection serves. The TypeScript plugin comes with npm; the Python and Go
# plugins are Debian's, and the committed output is what those exact packages produce, so say
# plainly which ones are missing rather than let buf fail.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
require() { # require COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
require protoc protobuf-compiler
require grpc_python_plugin protobuf-compiler-grpc
require protoc-gen-go protoc-gen-go
require protoc-gen-go-grpc protoc-gen-go-grpc

if [ "${#missing[@]}" -gt 0 ]; then
  echo "npm run generate: missing code generators for the Python and Go clients." >&2
  echo "Install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

# The committed Python and Go code was made by Debian bookworm's generators; another version
# produces different (valid) code, which CI would flag as a diff.
expected_protoc='libprotoc 3.21.12'
if [ "$(protoc --version)" != "$expected_protoc" ]; then
  echo "npm run generate: warning: $(protoc --version) differs from the $expected_protoc the committed code was made with" >&2
fi

buf generate

# Server reflection (src/api/reflection.ts) serves these descriptors: every file of proto/ under
# its own name, the well-known types it imports, and the comments (grpcurl's `describe` prints
# them). A plain FileDescriptorSet, without buf's image metadata; also usable offline with
# `grpcurl -protoset` or `buf curl --schema`.
buf build --as-file-descriptor-set -o proto/descriptor-set.binpb
