"""Load figure for `hearth serve`: starts the server on a free loopback port, then sends
--requests chat completions from N concurrent clients with the official openai client (the
one tests/clients/requirements.txt pins) and prints requests/s, latency and time-to-first-token
percentiles, and the generated tokens/s, per N.

    cargo build --release
    python3 -m pip install --target target/tmp/openai-client -r tests/clients/requirements.txt
    PYTHONPATH=target/tmp/openai-client python3 benches/serve_load.py --hearth target/release/hearth \\
        --clients 1,4,8 --requests 32

(`cargo test --test serve_clients` installs the client there too.) With --disconnect-every K,
every K-th client leaves after the first piece of its answer; the table then also says how many
requests failed, how many the server cancelled, and how many it still ran or held once all
clients were done (leaked: should be 0).

Each request asks one of a few different questions (streamed, temperature 0, --max-tokens
answer tokens), so consecutive requests rarely share a cached prompt, as with real users.
"""

import argparse
import concurrent.futures
import json
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import openai

QUESTIONS = [
    "What is the capital of France?",
    "Name three things you can find at a beach.",
    "Explain in one sentence why the sky is blue.",
    "Write a haiku about a lighthouse.",
    "What is 12 times 7?",
    "Give me a tip for learning to cook.",
    "Why do cats purr?",
    "Suggest a name for a small bakery.",
]


def start_server(hearth, model, extra):
    command = [hearth, "serve", "--port", "0", "--queue", "256"] + (["--model", model] if model else []) + extra
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in server.stderr:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            # Keep reading stderr so the server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            return server, found.group(1)
    sys.exit(f"the server exited before listening ({server.wait()})")


def one_request(client, model, i, max_tokens, leave=False):
    """(latency, time to first token, tokens, failed); with `leave`, the client disconnects
    after the first piece of the answer."""
    start = time.perf_counter()
    first = None
    tokens = 0
    try:
        chunks = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
            max_tokens=max_tokens,
            temperature=0,
            stream=True,
        )
        for chunk in chunks:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
                if leave:
                    chunks.close()
                    break
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
    except openai.OpenAIError as e:
        print(f"request {i} failed: {e}", file=sys.stderr)
        return time.perf_counter() - start, first or 0.0, tokens, True
    return time.perf_counter() - start, first or 0.0, tokens, False


def health(url):
    with urllib.request.urlopen(url + "/health", timeout=60) as answer:
        return json.load(answer)


def settled(url, patience=60):
    """/health once nothing runs or waits (or after `patience` seconds: then what leaked)."""
    deadline = time.perf_counter() + patience
    while True:
        now = health(url)
        if (now["running"] == 0 and now["waiting"] == 0) or time.perf_counter() > deadline:
            return now
        time.sleep(0.1)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hearth", default="target/release/hearth", help="the hearth binary")
    parser.add_argument("--model", help="model name or path [default: hearth's default model]")
    parser.add_argument("--clients", default="1,4,8", help="comma-separated concurrency levels")
    parser.add_argument("--requests", type=int, default=48, help="requests per concurrency level")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument(
        "--disconnect-every", type=int, default=0, metavar="K",
        help="every K-th request's client leaves after the first piece of its answer",
    )
    parser.add_argument("server_args", nargs="*", help="more `hearth serve` options, after --")
    a = parser.parse_args()

    server, url = start_server(a.hearth, a.model, a.server_args)
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=3600)
        model = client.models.list().data[0].id
        for i in range(len(QUESTIONS)):  # warm-up: shaders compiled, pages touched
            one_request(client, model, i, 4)
        leaves = lambda i: a.disconnect_every > 0 and i % a.disconnect_every == a.disconnect_every - 1
        print(f"{model} on {url}: {a.requests} streamed chat requests per row, {a.max_tokens} tokens max")
        if a.disconnect_every:
            print(f"every {a.disconnect_every}th client leaves after its first piece of answer")
        print("| clients | req/s | latency p50 | p95 | first token p50 | p95 | generated t/s | failed | cancelled | leaked |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n in [int(c) for c in a.clients.split(",")]:
            before = settled(url)
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                results = list(
                    pool.map(lambda i: one_request(client, model, i, a.max_tokens, leaves(i)), range(a.requests))
                )
            wall = time.perf_counter() - start
            after = settled(url)
            latency = [r[0] for r in results]
            first = [r[1] for r in results]
            tokens = sum(r[2] for r in results)
            failed = sum(r[3] for r in results) + after["failed"] - before["failed"]
            cancelled = after["cancelled"] - before["cancelled"]
            # Requests the server still runs or holds once every client is done.
            leaked = after["running"] + after["waiting"]
            print(
                f"| {n} | {a.requests / wall:.2f} | {statistics.median(latency):.2f} s | "
                f"{percentile(latency, 95):.2f} s | {statistics.median(first):.2f} s | "
                f"{percentile(first, 95):.2f} s | {tokens / wall:.1f} | {failed} | {cancelled} | {leaked} |",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
