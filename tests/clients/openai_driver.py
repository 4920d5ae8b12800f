"""Drives a running `hearth serve` with the official openai client, the way a user's tool
would, and prints what the client saw as one JSON object on stdout. It asserts nothing itself:
tests/serve_clients.rs compares the observations with `hearth run --temp 0`.

    python3 openai_driver.py --base-url http://127.0.0.1:8080 --question Q --prompt P \
        --stop S --max-tokens 8 --clients 8 --requests 100
"""

import argparse
import concurrent.futures
import json
import sys
import typing

import openai
import pydantic


def chat_text(client, model, question, max_tokens, **extra):
    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=max_tokens,
        **extra,
    )
    choice = reply.choices[0]
    return {
        "text": choice.message.content,
        "finish_reason": choice.finish_reason,
        "usage": reply.usage.model_dump() if reply.usage else None,
    }


def streamed(chunks, piece_of):
    pieces, finish, usage = [], None, None
    for chunk in chunks:
        if not chunk.choices:
            # The usage chunk that stream_options={"include_usage": True} asks for.
            usage = chunk.usage.model_dump() if chunk.usage else None
            continue
        piece = piece_of(chunk.choices[0])
        if piece:
            pieces.append(piece)
        finish = chunk.choices[0].finish_reason or finish
    return {"pieces": pieces, "finish_reason": finish, "usage": usage}


class Capital(pydantic.BaseModel):
    """What `parse()` is asked for: a Pydantic model the client turns into a strict schema."""

    city: str = pydantic.Field(max_length=24)
    country: typing.Literal["France", "Germany", "Italy"]
    population_millions: int = pydantic.Field(ge=0, le=100)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 24}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}


def structured(client, model, question):
    """Structured output and tools as the client's own helpers use them."""
    messages = [{"role": "user", "content": question}]
    greedy = {"temperature": 0, "max_tokens": 80}
    out = {}
    parsed = client.chat.completions.parse(model=model, messages=messages, response_format=Capital, **greedy)
    message = parsed.choices[0].message
    out["parsed"] = message.parsed.model_dump() if message.parsed else {"refusal": message.refusal}
    reply = client.chat.completions.create(
        model=model, messages=messages, response_format={"type": "json_object"}, **greedy
    )
    out["json_object"] = reply.choices[0].message.content

    reply = client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER, **greedy
    )
    choice = reply.choices[0]
    call = choice.message.tool_calls[0]
    out["tool_call"] = {
        "finish_reason": choice.finish_reason,
        "calls": len(choice.message.tool_calls),
        "name": call.function.name,
        "arguments": json.loads(call.function.arguments),
    }
    # Streamed, assembled by the client's stream helper.
    with client.chat.completions.stream(
        model=model, messages=messages, tools=[WEATHER_TOOL], tool_choice="required", **greedy
    ) as stream:
        final = stream.get_final_completion()
    streamed_call = final.choices[0].message.tool_calls[0]
    out["tool_call_stream"] = {
        "finish_reason": final.choices[0].finish_reason,
        "name": streamed_call.function.name,
        "arguments": json.loads(streamed_call.function.arguments),
    }
    # The loop's second step: the tool's answer goes back, the model answers in text.
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"})
    reply = client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER_TOOL], tool_choice="none", **greedy
    )
    out["tool_loop"] = {
        "finish_reason": reply.choices[0].finish_reason,
        "content": reply.choices[0].message.content,
        "prompt_tokens": reply.usage.prompt_tokens,
    }
    return out


def agent_loop(base_url, api_key, model, question):
    """A two-step tool loop as an agent framework runs it: LangChain's ChatOpenAI with a tool
    bound, the first call forced, the tool run, its answer sent back for the final reply."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"18 degrees and sunny in {city}"

    llm = ChatOpenAI(base_url=base_url, api_key=api_key, model=model, temperature=0, max_tokens=80, max_retries=0)
    messages = [HumanMessage(question)]
    first = llm.bind_tools([get_weather], tool_choice="get_weather").invoke(messages)
    messages.append(first)
    for call in first.tool_calls:
        messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    final = llm.bind_tools([get_weather]).invoke(messages)
    return {
        "calls": [{"name": c["name"], "args": c["args"]} for c in first.tool_calls],
        "final_content": final.content,
        "final_calls": len(final.tool_calls),
        "final_finish_reason": final.response_metadata.get("finish_reason"),
    }


def status_of(call):
    try:
        call()
    except openai.APIStatusError as e:
        return {"status": e.status_code, "message": e.message}
    return {"status": 200, "message": None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--question", required=True, help="a chat question")
    parser.add_argument("--prompt", required=True, help="a text-completion prompt")
    parser.add_argument("--stop", required=True, help="a stop string for the question's answer")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=100)
    a = parser.parse_args()

    # No retries: a 503 or a timeout must show, not be papered over.
    client = openai.OpenAI(base_url=a.base_url + "/v1", api_key=a.api_key, max_retries=0, timeout=600)
    model = client.models.list().data[0].id
    greedy = {"temperature": 0}
    out = {"model": model}
    out["chat"] = chat_text(client, model, a.question, a.max_tokens, **greedy)
    out["chat_stream"] = streamed(
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": a.question}],
            max_tokens=a.max_tokens,
            stream=True,
            stream_options={"include_usage": True},
            **greedy,
        ),
        lambda choice: choice.delta.content,
    )
    out["chat_stop"] = chat_text(client, model, a.question, a.max_tokens, stop=[a.stop], **greedy)
    out["chat_seeded"] = [
        chat_text(client, model, a.question, a.max_tokens, temperature=1.0, seed=7)["text"] for _ in range(2)
    ]
    completion = client.completions.create(model=model, prompt=a.prompt, max_tokens=a.max_tokens, **greedy)
    out["completion"] = {"text": completion.choices[0].text, "finish_reason": completion.choices[0].finish_reason}
    out["completion_stream"] = streamed(
        client.completions.create(model=model, prompt=a.prompt, max_tokens=a.max_tokens, stream=True, **greedy),
        lambda choice: choice.text,
    )
    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": a.question}],
        max_tokens=a.max_tokens,
        logprobs=True,
        top_logprobs=2,
        **greedy,
    )
    out["chat_logprobs"] = [
        {"token": t.token, "logprob": t.logprob, "top": [top.logprob for top in t.top_logprobs]}
        for t in reply.choices[0].logprobs.content
    ]
    completion = client.completions.create(model=model, prompt=a.prompt, max_tokens=a.max_tokens, logprobs=2, **greedy)
    logprobs = completion.choices[0].logprobs
    out["completion_logprobs"] = {"tokens": logprobs.tokens, "token_logprobs": logprobs.token_logprobs}
    out["structured"] = structured(client, model, a.question)
    out["agent"] = agent_loop(a.base_url + "/v1", a.api_key, model, a.question)
    out["bad_max_tokens"] = status_of(
        lambda: client.completions.create(model=model, prompt=a.prompt, max_tokens=0)
    )
    out["bad_key"] = status_of(
        lambda: openai.OpenAI(base_url=a.base_url + "/v1", api_key="wrong", max_retries=0).models.list()
    )

    def one(i):
        if i % 2 == 0:
            return ["whole", chat_text(client, model, a.question, a.max_tokens, **greedy)["text"]]
        chunks = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": a.question}],
            max_tokens=a.max_tokens,
            stream=True,
            **greedy,
        )
        return ["streamed", "".join(streamed(chunks, lambda choice: choice.delta.content)["pieces"])]

    with concurrent.futures.ThreadPoolExecutor(a.clients) as pool:
        out["concurrent"] = list(pool.map(one, range(a.requests)))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
