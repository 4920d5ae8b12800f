"""llama.cpp's outputs for a model, as a fixture hearth's tests compare against.

    python3 scripts/llama_cpp_fixture.py MODEL.gguf OUT.json --ids "5 17 99 ..." [--greedy-prompt 8 --greedy 24]

Writes {"ids", "logits": [[...] per position], "greedy_prompt", "greedy", "margins"}: the logits
after every position of `ids` (one batch), and the greedy continuation of its first tokens with
the top-2 logit margin of each step (where it is small, engines may rightly differ). Needs the
llama_cpp Python package (llama-cpp-python) with its library; for the reference, run it on an
F32 copy (`llama-quantize --allow-requantize Q.gguf F32.gguf F32`) so that no activation is
rounded to 8 bits, with an f32 KV cache (set here), as hearth keeps one.
"""
import argparse, json
import llama_cpp

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("out")
p.add_argument("--ids", required=True)
p.add_argument("--greedy-prompt", type=int, default=8)
p.add_argument("--greedy", type=int, default=24)
a = p.parse_args()
ids = [int(t) for t in a.ids.replace(",", " ").split()]
F32 = 0
llm = llama_cpp.Llama(model_path=a.model, n_ctx=max(256, len(ids) + a.greedy), n_batch=512, n_ubatch=512,
                      logits_all=True, verbose=False, type_k=F32, type_v=F32, n_threads=2)
llm.eval(ids)
logits = [[float("%.6g" % v) for v in llm.scores[pos]] for pos in range(len(ids))]
llm.reset()
prompt = ids[: a.greedy_prompt]
greedy = []
for tok in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
    greedy.append(int(tok))
    if len(greedy) == a.greedy:
        break
llm.reset()
llm.eval(prompt + greedy[:-1])
margins = []
for i in range(len(greedy)):
    top = sorted(llm.scores[len(prompt) - 1 + i], reverse=True)
    margins.append(round(float(top[0] - top[1]), 6))
out = {"ids": ids, "logits": logits, "greedy_prompt": prompt, "greedy": greedy, "margins": margins}
with open(a.out, "w") as f:
    json.dump(out, f, separators=(",", ":"))
