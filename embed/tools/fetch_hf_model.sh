#!/bin/sh
# fetch_hf_model.sh NAME DEST -- downloads one of the Hugging Face models
# semcached knows into DEST (a directory --model can point at), verifying
# every file before it is used. Called by `make model MODEL=NAME`.
#
# Verification: files whose sha256 is pinned in embed/tools/models.sha256
# must match it; the weights of a model without a pinned hash must match the
# sha256 that Hugging Face publishes for the LFS object (its API's lfs.oid),
# which at least proves the download is the file the hub serves. Nothing is
# moved into DEST unless every check passes.
#
# These machines cannot reach Hugging Face, so this script is not exercised
# by the test suite (the encoder is tested on random weights against numpy).
set -eu

name=${1:?usage: fetch_hf_model.sh NAME DEST}
dest=${2:?usage: fetch_hf_model.sh NAME DEST}
here=$(cd "$(dirname "$0")" && pwd)
st_files="config.json model.safetensors vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json sentence_bert_config.json modules.json 1_Pooling/config.json"
case $name in
all-MiniLM-L6-v2) repo=sentence-transformers/all-MiniLM-L6-v2; files=$st_files ;;
bge-small-en-v1.5) repo=BAAI/bge-small-en-v1.5; files=$st_files ;;
potion-base-8M) repo=minishlab/potion-base-8M; files="config.json model.safetensors tokenizer.json" ;;
*)
    echo "fetch_hf_model.sh: unknown model '$name' (all-MiniLM-L6-v2, bge-small-en-v1.5, potion-base-8M)" >&2
    exit 2 ;;
esac
[ -f "$dest/.verified" ] && { echo "$name: already in $dest"; exit 0; }

tmp="$dest.partial"
rm -rf "$tmp"
mkdir -p "$tmp/1_Pooling"
for f in $files; do
    echo "fetching $repo/$f"
    curl -fsSL --retry 3 -o "$tmp/$f" "https://huggingface.co/$repo/resolve/main/$f"
done

for f in $files; do
    want=$(awk -v k="$name/$f" '$2 == k { print $1 }' "$here/models.sha256")
    if [ -z "$want" ] && [ "$f" = model.safetensors ]; then
        want=$(curl -fsSL "https://huggingface.co/api/models/$repo/tree/main" |
               /usr/bin/python3 -c 'import json,sys; print(next(e["lfs"]["oid"] for e in json.load(sys.stdin) if e["path"] == "model.safetensors"))')
    fi
    got=$(sha256sum "$tmp/$f" | cut -d' ' -f1)
    if [ -n "$want" ] && [ "$got" != "$want" ]; then
        echo "fetch_hf_model.sh: $name/$f: sha256 $got, expected $want" >&2
        rm -rf "$tmp"
        exit 1
    fi
    echo "$got  $name/$f${want:+ (verified)}"
done
touch "$tmp/.verified"
rm -rf "$dest"
mv "$tmp" "$dest"
echo "$name: ready in $dest (make run MODEL=$name)"
