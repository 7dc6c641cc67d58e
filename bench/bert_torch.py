#!/usr/bin/python3
"""bert_torch.py MODEL_DIR THREADS -- the PyTorch peer of semcached-bert-bench:
the same BERT forward pass (F.linear, F.layer_norm, masked softmax attention,
exact GELU, mean pooling, L2 normalization) on the same safetensors weights,
with torch.set_num_threads(THREADS), in inference mode, timed at the same
shapes. Prints JSON lines."""
import json, math, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

d, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
cfg = json.load(open(d + "/config.json"))
H, NH, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
raw = open(d + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
W = {}
for k, v in hdr.items():
    if k == "__metadata__":
        continue
    a, b = v["data_offsets"]
    W[k] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(v["shape"]).copy())


def forward(ids, mask):
    B, T = ids.shape
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:T] \
        + W["embeddings.token_type_embeddings.weight"][0]
    x = F.layer_norm(x, (H,), W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], 1e-12)
    add = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
    D = H // NH
    for l in range(L):
        p = "encoder.layer.%d." % l
        lin = lambda t, nm: F.linear(t, W[p + nm + ".weight"], W[p + nm + ".bias"])
        sp = lambda t: t.view(B, T, NH, D).transpose(1, 2)
        q, k, v = (sp(lin(x, "attention.self." + nm)) for nm in ("query", "key", "value"))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + add, -1) @ v
        a = a.transpose(1, 2).reshape(B, T, H)
        x = F.layer_norm(lin(a, "attention.output.dense") + x, (H,), W[p + "attention.output.LayerNorm.weight"],
                         W[p + "attention.output.LayerNorm.bias"], 1e-12)
        h = F.gelu(lin(x, "intermediate.dense"))
        x = F.layer_norm(lin(h, "output.dense") + x, (H,), W[p + "output.LayerNorm.weight"],
                         W[p + "output.LayerNorm.bias"], 1e-12)
    pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
    return F.normalize(pooled, dim=1)


with torch.inference_mode():
    for T in (16, 64):
        for B in (1, 8, 32):
            ids = torch.randint(5, 30000, (B, T))
            mask = torch.ones(B, T)
            forward(ids, mask)
            reps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < 2.0:
                forward(ids, mask)
                reps += 1
            print(json.dumps({"tokens": T, "batch": B, "sentences_per_s": B * reps / (time.perf_counter() - t0),
                              "torch": torch.__version__, "threads": threads}), flush=True)
