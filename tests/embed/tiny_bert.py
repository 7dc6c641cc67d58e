#!/usr/bin/python3
"""tiny_bert.py OUT_DIR DTYPE POOLING [H HEADS FF LAYERS VOCAB] -- writes a random-weight BERT in
the Hugging Face layout (config.json, model.safetensors in F32/F16/BF16,
vocab.txt, 1_Pooling/config.json) and expected.json: the output of the same
forward pass computed independently in numpy float64 (embeddings, LayerNorm,
masked multi-head attention over a padded batch, exact erf GELU, residuals,
mean or CLS pooling, L2 normalization) on a batch of mixed-length id lists.
The C encoder must reproduce it within 1e-5. With a shape given (the
benchmark's all-MiniLM-L6-v2 shape: 384 12 1536 6 30522) no reference is
computed and the vocabulary is synthetic."""
import json, math, os, struct, sys

import numpy as np

out, dtype, pooling = sys.argv[1], sys.argv[2], sys.argv[3]
rng = np.random.default_rng(20261123)
H, NH, FF, NL, P, V = 32, 4, 64, 2, 64, 120
BIG = len(sys.argv) > 4
if BIG:
    H, NH, FF, NL, V = (int(x) for x in sys.argv[4:9])
    P = 512
os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)

vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["w%d" % i for i in range(V - 5)]
open(os.path.join(out, "vocab.txt"), "w").write("\n".join(vocab) + "\n")
json.dump({"model_type": "bert", "hidden_size": H, "num_attention_heads": NH,
           "intermediate_size": FF, "num_hidden_layers": NL, "max_position_embeddings": P,
           "type_vocab_size": 2, "vocab_size": V, "layer_norm_eps": 1e-12, "hidden_act": "gelu"},
          open(os.path.join(out, "config.json"), "w"))
json.dump({"pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_cls_token": pooling == "cls"},
          open(os.path.join(out, "1_Pooling", "config.json"), "w"))


def stored(a):
    """The values as they will be read back from the file's dtype."""
    a = a.astype(np.float32)
    if dtype == "F16":
        return a.astype(np.float16).astype(np.float64), a.astype(np.float16).tobytes()
    if dtype == "BF16":
        u = a.view(np.uint32).astype(np.uint64)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
        back = (u.astype(np.uint32) << 16).view(np.float32)
        return back.astype(np.float64), u.tobytes()
    return a.astype(np.float64), a.tobytes()


tensors, W = {}, {}


def param(name, shape, scale=0.3, offset=0.0):
    vals, raw = stored(rng.standard_normal(shape) * scale + offset)
    tensors[name] = (list(shape), raw)
    W[name] = vals


param("embeddings.word_embeddings.weight", (V, H))
param("embeddings.position_embeddings.weight", (P, H))
param("embeddings.token_type_embeddings.weight", (2, H))
param("embeddings.LayerNorm.weight", (H,), 0.1, 1.0)
param("embeddings.LayerNorm.bias", (H,), 0.1)
for l in range(NL):
    p = "encoder.layer.%d." % l
    for n in ("query", "key", "value"):
        param(p + "attention.self.%s.weight" % n, (H, H))
        param(p + "attention.self.%s.bias" % n, (H,), 0.1)
    param(p + "attention.output.dense.weight", (H, H))
    param(p + "attention.output.dense.bias", (H,), 0.1)
    param(p + "attention.output.LayerNorm.weight", (H,), 0.1, 1.0)
    param(p + "attention.output.LayerNorm.bias", (H,), 0.1)
    param(p + "intermediate.dense.weight", (FF, H))
    param(p + "intermediate.dense.bias", (FF,), 0.1)
    param(p + "output.dense.weight", (H, FF))
    param(p + "output.dense.bias", (H,), 0.1)
    param(p + "output.LayerNorm.weight", (H,), 0.1, 1.0)
    param(p + "output.LayerNorm.bias", (H,), 0.1)

header, data = {}, b""
for name, (shape, raw) in tensors.items():
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
header["__metadata__"] = {"format": "pt"}
hb = json.dumps(header).encode()
hb += b" " * (-len(hb) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb + data)

if BIG:
    sys.exit(0)

# A batch of mixed lengths, each [CLS] ... [SEP].
lengths = [3, 11, 1 + 2, 17, 6]
ids = [[2] + [int(x) for x in rng.integers(5, V, n - 2)] + [3] for n in lengths]
L = max(len(s) for s in ids)
erf = np.vectorize(math.erf)


def ln(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-12) * g + b


mask = np.array([[1.0] * len(s) + [0.0] * (L - len(s)) for s in ids])
padded = np.array([s + [0] * (L - len(s)) for s in ids])
x = W["embeddings.word_embeddings.weight"][padded] + W["embeddings.position_embeddings.weight"][:L] \
    + W["embeddings.token_type_embeddings.weight"][0]
x = ln(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
D = H // NH
for l in range(NL):
    p = "encoder.layer.%d." % l
    lin = lambda t, n: t @ W[p + n + ".weight"].T + W[p + n + ".bias"]
    split = lambda t: t.reshape(len(ids), L, NH, D).transpose(0, 2, 1, 3)
    q, k, v = (split(lin(x, "attention.self." + n)) for n in ("query", "key", "value"))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D) + (1 - mask)[:, None, None, :] * -1e30
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    probs = scores / scores.sum(-1, keepdims=True)
    ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(len(ids), L, H)
    x = ln(lin(ctx, "attention.output.dense") + x, W[p + "attention.output.LayerNorm.weight"],
           W[p + "attention.output.LayerNorm.bias"])
    h = lin(x, "intermediate.dense")
    h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
    x = ln(lin(h, "output.dense") + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
if pooling == "cls":
    pooled = x[:, 0, :]
else:
    pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
pooled = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
json.dump({"ids": ids, "embeddings": pooled.tolist()}, open(os.path.join(out, "expected.json"), "w"))
