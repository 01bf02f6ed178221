#!/usr/bin/env bash
# Makes sure kube-apiserver, kubectl and etcd for the kubernetes test tier are on this machine:
# builds the first two from the Go module proxy at the release pinned in
# tools/kube-apiserver/go.mod, only when the cache lacks them. Prints the directory holding them.
# Safe to run again.
source "$(dirname "$0")/lib.sh"
ensure_system_packages test
ensure_kube_binaries
