#!/usr/bin/python3
"""guard_words.py -- writes the word list of the rare-word guard
(cache/guard_words.txt) from a semcached GloVe file (make model:
~/.cache/semcached/glove-100d.scglove, whose vocabulary is in descending
frequency order): the words made of letters only, case-folded and with
accents stripped as the guard's tokenizer does, first occurrence kept, the
first N of them.

usage: guard_words.py GLOVE.scglove N > cache/guard_words.txt"""
import struct, sys, unicodedata


def fold(w):
    w = unicodedata.normalize("NFD", w.casefold())
    return unicodedata.normalize("NFC", "".join(c for c in w if unicodedata.category(c) != "Mn"))


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    data = open(sys.argv[1], "rb").read()
    assert data[:8] == b"SCGLOVE1", "not a semcached GloVe file"
    dim, n, vocab_bytes, _ = struct.unpack("<4I", data[8:24])
    start = 24 + dim * n * 2
    words = data[start:start + vocab_bytes].split(b"\0")[:n]
    seen, out, limit = set(), [], int(sys.argv[2])
    for raw in words:
        w = fold(raw.decode("utf-8", "replace"))
        if w.isalpha() and w not in seen and len(w.encode()) <= 64:
            seen.add(w)
            out.append(w)
            if len(out) == limit:
                break
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
