#!/bin/sh
# Builds the native front of the plugin (shim.c) into dist/ciliate-cni, which bin/ciliate-cni
# links to. The Node binary that builds it is the one its fallback runs.
set -eu
cd "$(dirname "$0")/../.."
mkdir -p dist
node_bin="$(node -p process.execPath)"
${CC:-cc} -O2 -Wall -Wextra -Werror -o dist/ciliate-cni.tmp src/cni/shim.c \
  -DNODE_BINARY="\"$node_bin\""
mv dist/ciliate-cni.tmp dist/ciliate-cni
