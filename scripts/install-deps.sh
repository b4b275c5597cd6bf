#!/bin/sh
# install-deps.sh — installs, from Debian's packages, what cnn.c needs and is missing.
#   scripts/install-deps.sh          build + run (the demo)
#   scripts/install-deps.sh test     also the test oracles (PyTorch, torchvision, numpy, PIL) and clang with
#                                    its libFuzzer/sanitizer runtime and OpenMP (fuzz/, CI's fuzzing runs)
# Installs nothing and needs no root when everything is already there.
set -eu
# libcairo2-dev and fonts-dejavu-core: the PNG plots (learning curves, LR range test) and their text
pkgs="build-essential cmake pkg-config libdnnl-dev zlib1g-dev libjpeg-dev libstb-dev libcairo2-dev fonts-dejavu-core
      libopenmpi-dev openmpi-bin dataset-fashion-mnist"
if [ "${1:-}" = test ]; then
  pkgs="$pkgs python3 python3-torch python3-torchvision python3-numpy python3-pil time
        clang libclang-rt-14-dev libomp-dev"
fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: these Debian packages are missing and installing them needs root:$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
