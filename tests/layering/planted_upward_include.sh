#!/usr/bin/env bash
# Copies the framework and the plugins, plants `#include "saelab/train/trainer.hpp"` in a core
# header and a cross-plugin include, and expects scripts/check-layering.sh to refuse both.
set -euo pipefail
src="$1" tmp="$2"
rm -rf "$tmp" && mkdir -p "$tmp"
cp -r "$src/framework" "$src/plugins" "$tmp/"
sed -i '1a #include "saelab/train/trainer.hpp"' "$tmp/framework/include/saelab/core/error.hpp"
sed -i '1a #include "../gpt2/model.hpp"' "$tmp/plugins/losses/losses.cpp"
if out=$(bash "$src/scripts/check-layering.sh" "$tmp" 2>&1); then
  echo "FAIL: the layering check accepted an upward include:"; echo "$out"; exit 1
fi
echo "$out"
want1="framework/include/saelab/core/error.hpp:2: 'core' (layer 0) includes 'train' (layer 7)"
want2="plugins/losses/losses.cpp:2: a plugin includes another plugin's files"
for want in "$want1" "$want2"; do
  grep -qF "$want" <<<"$out" || { echo "FAIL: expected the message: $want"; exit 1; }
done
echo "ok: both planted includes were refused"
