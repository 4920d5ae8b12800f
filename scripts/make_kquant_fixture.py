#!/usr/bin/env python3
"""Writes tests/fixtures/kquants.json: a few random blocks of each K-quant (and IQ4_XS, Q5_0,
Q5_1, IQ4_NL) with their values as dequantized by gguf-py, llama.cpp's own Python package.

It is an independent reference for src/quant/dequant.rs (the Rust decoder was written from the
format definitions, not from gguf-py). Not run in CI; rerun by hand if the fixture must change:

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install numpy gguf
    /tmp/gguf-venv/bin/python scripts/make_kquant_fixture.py

Made with gguf 0.19.0 and numpy 2.4.6. The output is deterministic (fixed seed).
"""

import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

SEED = 20240611
BLOCKS_PER_TYPE = 2

# type -> [(byte offset of an f16 scale, low, high)]: the block's quant bytes are random, its
# f16 scales are overwritten with values of a realistic size so nothing overflows.
SCALES = {
    T.Q2_K: [(80, 1e-4, 1e-2), (82, 1e-4, 1e-2)],
    T.Q3_K: [(108, 1e-4, 1e-2)],
    T.Q4_K: [(0, 1e-4, 1e-2), (2, 1e-4, 1e-2)],
    T.Q5_K: [(0, 1e-4, 1e-2), (2, 1e-4, 1e-2)],
    T.Q6_K: [(208, 1e-4, 1e-2)],
    T.IQ4_XS: [(0, 1e-4, 1e-2)],
    T.Q5_0: [(0, 1e-4, 1e-2)],
    T.Q5_1: [(0, 1e-4, 1e-2), (2, -0.5, 0.0)],
    T.IQ4_NL: [(0, 1e-4, 1e-2)],
}


def main() -> None:
    rng = np.random.default_rng(SEED)
    entries = []
    for qtype, scales in SCALES.items():
        _, block_bytes = GGML_QUANT_SIZES[qtype]
        blocks = rng.integers(0, 256, size=(BLOCKS_PER_TYPE, block_bytes), dtype=np.uint8)
        for block in blocks:
            for offset, low, high in scales:
                block[offset : offset + 2] = np.array([rng.uniform(low, high)], dtype="<f2").view(np.uint8)
        for block in blocks:
            values = dequantize(block.copy(), qtype).astype(np.float32).reshape(-1)
            assert np.all(np.isfinite(values))
            entries.append(
                {
                    "type": qtype.name,
                    "bytes_hex": block.tobytes().hex(),
                    # f32 values written as the exact f64 they widen to.
                    "values": [float(v) for v in values],
                }
            )
    out = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "kquants.json"
    with open(out, "w") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(e, separators=(",", ":")) for e in entries))
        f.write("\n]\n")
    print(f"wrote {len(entries)} blocks to {out}")


if __name__ == "__main__":
    main()
