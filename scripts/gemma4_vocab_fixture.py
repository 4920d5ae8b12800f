"""A small vocabulary in Gemma 4's tokenizer format ("gemma4": BPE with ranked merges over raw
UTF-8, spaces written as U+2581, byte tokens <0xXX> for what it lacks, newline runs split off),
and llama.cpp's token ids and text for a few strings, as a fixture for hearth's tokenizer.

    python3 scripts/gemma4_vocab_fixture.py OUT.gguf OUT.json

Needs the llama_cpp Python package (llama-cpp-python) and gguf-py from the same llama.cpp.
"""
import json, sys
import gguf, llama_cpp

out_gguf, out_json = sys.argv[1], sys.argv[2]
NORMAL, UNKNOWN, CONTROL, USER, BYTE = 1, 2, 3, 4, 6
tokens = [("<pad>", CONTROL), ("<eos>", CONTROL), ("<bos>", CONTROL), ("<unk>", UNKNOWN),
          ("<|turn>", CONTROL), ("<turn|>", CONTROL), ("<|channel>", USER), ("<channel|>", USER)]
tokens += [("<0x%02X>" % b, BYTE) for b in range(256)]
chars = [chr(c) for c in range(0x21, 0x7F)] + ["\u2581", "\n", "\u00e9"]
tokens += [(c, NORMAL) for c in chars]
# "\n\n" and "\n\n\n" are tokens without a merge that makes them (llama.cpp takes a newline run
# whole when it is a token).
merges = ["\u2581 t", "t h", "\u2581t h", "h e", "\u2581th e", "i n", "\u2581 in", "e r", "\u2581 a", "a n", "an d",
          "\u2581a nd", "\u2581 \u2581", "\u2581\u2581 \u2581\u2581"]
merged = []
for m in merges:
    a, b = m.split(" ")
    merged.append(a + b)
tokens += [(t, NORMAL) for t in merged] + [("\n\n", NORMAL), ("\n\n\n", NORMAL)]

w = gguf.GGUFWriter(out_gguf, "gemma4")
w.add_block_count(1)
w.add_context_length(256)
w.add_embedding_length(64)
w.add_feed_forward_length(128)
w.add_head_count(4)
w.add_head_count_kv(1)
w.add_layer_norm_rms_eps(1e-6)
w.add_sliding_window_pattern([False])
w.add_uint32("gemma4.attention.sliding_window", 8)
w.add_uint32("gemma4.attention.key_length_swa", 16)
w.add_uint32("gemma4.attention.value_length_swa", 16)
w.add_uint32("gemma4.embedding_length_per_layer_input", 0)
w.add_tokenizer_model("gemma4")
w.add_token_list([t for t, _ in tokens])
w.add_token_types([ty for _, ty in tokens])
w.add_token_merges(merges)
w.add_bos_token_id(2)
w.add_eos_token_id(1)
w.add_unk_token_id(3)
w.add_pad_token_id(0)
w.add_add_space_prefix(False)
w.add_add_bos_token(True)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

llm = llama_cpp.Llama(model_path=out_gguf, vocab_only=True, verbose=False)
texts = ["the and in", "  the\n\nand\n\n\nthe", "The caf\u00e9 is there.", "<|turn>user\nthe<turn|>\n",
         "a\n\n\n\nb", "\u4e2d the", "x  y   z"]
cases = []
for text in texts:
    ids = llm.tokenize(text.encode(), add_bos=True, special=True)
    plain = llm.tokenize(text.encode(), add_bos=False, special=False)
    cases.append({"text": text, "ids": ids, "plain_ids": plain,
                  "detokenized": llm.detokenize(plain).decode("utf-8", "replace")})
json.dump({"cases": cases}, open(out_json, "w"), indent=1, ensure_ascii=False)
