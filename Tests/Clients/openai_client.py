"""Orion's OpenAI-compatible API, called by the real `openai` client, unchanged.

Run by Tests/GatewayTests/OpenAIClientTests.swift against a gateway whose tier routes gpt-4o-mini
and text-embedding-3-small to the loopback fake upstream (echo answers). Environment:
ORION_BASE_URL (the gateway), ORION_TOKEN (a bearer token, passed as the API key).
Exits non-zero with a traceback when anything differs from what the client should see.
"""
import os

import openai

client = openai.OpenAI(base_url=os.environ["ORION_BASE_URL"] + "/v1", api_key=os.environ["ORION_TOKEN"], max_retries=0, timeout=30)

# Plain completion.
reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello from python"}])
assert reply.choices[0].message.content == "echo: hello from python", reply
assert reply.choices[0].finish_reason == "stop", reply
assert reply.usage.prompt_tokens == 12 and reply.usage.completion_tokens == 4, reply.usage

# Streamed completion, usage in the last chunk.
text, usage = "", None
with client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "stream me please"}], stream=True, stream_options={"include_usage": True}
) as stream:
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage is not None:
            usage = chunk.usage
assert text == "echo: stream me please", text
assert usage is not None and usage.completion_tokens == 4, usage

# Embeddings: the client asks for base64 unless told otherwise; both must work.
vectors = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 8, vectors
floats = client.embeddings.create(model="text-embedding-3-small", input="a b", encoding_format="float")
assert all(abs(x - y) < 1e-6 for x, y in zip(floats.data[0].embedding, vectors.data[0].embedding)), (floats, vectors)

# Models, and the refusal of one the tier does not route.
assert "gpt-4o-mini" in [model.id for model in client.models.list()]
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("an unknown model was answered")
except openai.NotFoundError as error:
    assert error.body["code"] == "MODEL_NOT_FOUND", error.body

print("openai client: ok")
