#!/usr/bin/env python3
"""Fake inference backend for benchmarks: zero delay, deterministic, stdlib only (uses uvloop if importable).

Speaks
  * Ollama native API (what llama-stack 0.0.41's remote::ollama adapter uses):
      GET  /api/ps, /api/tags            running models
      POST /api/generate, /api/chat      JSON, or NDJSON stream when "stream" is true (Ollama's default)
      POST /api/embeddings, /api/embed   fixed vectors
  * OpenAI-compatible API (for remote::openai / vllm style adapters):
      GET  /v1/models
      POST /v1/chat/completions, /v1/completions   JSON, or SSE when "stream": true
      POST /v1/embeddings
  * GET / and GET /health

Number of generated tokens: request field options.num_predict / options.max_tokens (Ollama) or
max_tokens (OpenAI); else header X-Fake-Tokens; else --tokens (default 32). Any model whose name
contains "guard" answers "safe" (one token) so Llama Guard shields pass.
Responses are cached per (route, model, tokens, stream) and written with a single send.

With --models a,b the backend serves only those models and answers any other one with 404
{"error": "model 'x' not found"}, as Ollama does (tests use this to check routing).

A chat request to a model whose name contains "tools", sent with tools and not answering a tool
result, is answered with a call to the first tool (each of its parameters set to "fake"), in
Ollama's or OpenAI's format; streamed OpenAI calls arrive with their arguments in two pieces.
With --tool-calls any model does so, and a raw `/api/generate` prompt listing functions the way
Llama 3.1's JSON tool prompt does (and not ending in an ipython turn) is answered with a call to
the first function as Llama writes it: `{"type": "function", "name": ..., "parameters": {...}}`.

Usage: fake_backend.py [--port 11434] [--host 127.0.0.1] [--tokens 32] [--dim 384] [--models a,b] [--tool-calls]
"""
import argparse
import asyncio
import json
import re
import time

MODELS = [
    "llama3.1:8b-instruct-fp16",
    "llama3.1:70b-instruct-fp16",
    "llama3.2:1b-instruct-fp16",
    "llama3.2:3b-instruct-fp16",
    "xe/llamaguard3:latest",
]
CREATED = "2024-10-10T00:00:00Z"
ARGS = None
CACHE = {}


def ntokens(body, headers):
    opts = body.get("options") or {}
    for k in ("num_predict", "max_tokens"):
        if opts.get(k):
            return int(opts[k])
    if body.get("max_tokens"):
        return int(body["max_tokens"])
    if b"x-fake-tokens" in headers:
        return int(headers[b"x-fake-tokens"])
    return ARGS.tokens


def words(model, n):
    if "guard" in model:
        return ["safe"]
    return [" tok%d" % (i % 100) for i in range(n)]


def http(code, ctype, body, chunked=False):
    reason = {200: "OK", 404: "Not Found", 400: "Bad Request", 500: "Internal Server Error"}.get(code, "OK")
    head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n" % (code, reason, ctype)
    if chunked:
        return head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + body
    return head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunk(b):
    return b"%x\r\n%s\r\n" % (len(b), b)


def jresp(obj, code=200):
    return http(code, "application/json", json.dumps(obj).encode())


def ollama_gen(path, model, n, stream):
    ws = words(model, n)
    chat = path == "/api/chat"

    def piece(text, done):
        d = {"model": model, "created_at": CREATED}
        if chat:
            d["message"] = {"role": "assistant", "content": text}
        else:
            d["response"] = text
        d["done"] = done
        if done:
            d.update(done_reason="stop", total_duration=1, load_duration=1, prompt_eval_count=8,
                     prompt_eval_duration=1, eval_count=len(ws), eval_duration=1)
            if not chat:
                d["context"] = []
        return d

    if not stream:
        return jresp(piece("".join(ws), True))
    body = b"".join(chunk(json.dumps(piece(w, False)).encode() + b"\n") for w in ws)
    body += chunk(json.dumps(piece("", True)).encode() + b"\n") + b"0\r\n\r\n"
    return http(200, "application/x-ndjson", body, chunked=True)


def openai_gen(path, model, n, stream):
    ws = words(model, n)
    chat = path == "/v1/chat/completions"
    obj = "chat.completion" if chat else "text_completion"
    usage = {"prompt_tokens": 8, "completion_tokens": len(ws), "total_tokens": 8 + len(ws)}
    if not stream:
        text = "".join(ws)
        ch = {"index": 0, "finish_reason": "stop", "logprobs": None}
        if chat:
            ch["message"] = {"role": "assistant", "content": text}
        else:
            ch["text"] = text
        return jresp({"id": "fake-1", "object": obj, "created": 1728518400, "model": model,
                      "choices": [ch], "usage": usage})
    parts = []
    for i, w in enumerate(ws + [None]):
        ch = {"index": 0, "finish_reason": "stop" if w is None else None, "logprobs": None}
        if chat:
            ch["delta"] = {} if w is None else ({"role": "assistant", "content": w} if i == 0 else {"content": w})
        else:
            ch["text"] = "" if w is None else w
        ev = {"id": "fake-1", "object": obj + ".chunk", "created": 1728518400, "model": model, "choices": [ch]}
        parts.append(chunk(b"data: " + json.dumps(ev).encode() + b"\n\n"))
    parts.append(chunk(b"data: [DONE]\n\n"))
    return http(200, "text/event-stream", b"".join(parts) + b"0\r\n\r\n", chunked=True)


def wants_tool_call(model, body):
    msgs = body.get("messages") or []
    return (("tools" in model or ARGS.tool_calls) and bool(body.get("tools"))
            and not (msgs and msgs[-1].get("role") in ("tool", "ipython")))


FUNCTIONS_MARK = "Here is a list of functions in JSON format"
HEADER = re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>")


def raw_tool_call(body):
    """The call text for a raw Llama prompt that lists JSON functions, or None."""
    prompt = body.get("prompt") or ""
    if not ARGS.tool_calls or not body.get("raw") or FUNCTIONS_MARK not in prompt:
        return None
    roles = HEADER.findall(prompt)
    if roles and roles[-1] == "assistant":
        roles.pop()
    if roles and roles[-1] == "ipython":
        return None
    listed = prompt.split(FUNCTIONS_MARK, 1)[1]
    name = re.search(r'"name":\s*"([^"]+)"', listed)
    if not name:
        return None
    params = re.findall(r'\{\s*"([^"]+)":\s*\{\s*"type":\s*"object"', listed.split('"properties"', 1)[-1].split('"required"', 1)[0])
    return json.dumps({"type": "function", "name": name.group(1), "parameters": {p: "fake" for p in params}})


def raw_tool_answer(model, text, stream):
    done = {"model": model, "created_at": CREATED, "response": "", "done": True, "done_reason": "stop",
            "context": []}
    if not stream:
        return jresp(dict(done, response=text))
    lines = [{"model": model, "created_at": CREATED, "response": text, "done": False}, done]
    body = b"".join(chunk(json.dumps(x).encode() + b"\n") for x in lines) + b"0\r\n\r\n"
    return http(200, "application/x-ndjson", body, chunked=True)


def tool_answer(path, model, body, stream):
    fn = body["tools"][0].get("function", {})
    props = (fn.get("parameters") or {}).get("properties") or {}
    args = {k: "fake" for k in props}
    if path == "/api/chat":
        msg = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": fn.get("name", ""), "arguments": args}}]}
        done = {"model": model, "created_at": CREATED, "message": {"role": "assistant", "content": ""},
                "done": True, "done_reason": "stop"}
        if not stream:
            return jresp(dict(done, message=msg))
        lines = [{"model": model, "created_at": CREATED, "message": msg, "done": False}, done]
        body = b"".join(chunk(json.dumps(x).encode() + b"\n") for x in lines) + b"0\r\n\r\n"
        return http(200, "application/x-ndjson", body, chunked=True)
    text = json.dumps(args)
    call = {"id": "call_fake0", "type": "function", "function": {"name": fn.get("name", ""), "arguments": text}}
    base = {"id": "fake-1", "created": 1728518400, "model": model}
    if not stream:
        ch = {"index": 0, "finish_reason": "tool_calls", "logprobs": None,
              "message": {"role": "assistant", "content": None, "tool_calls": [call]}}
        return jresp(dict(base, object="chat.completion", choices=[ch]))
    half = len(text) // 2
    deltas = [
        {"role": "assistant", "tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                               "function": {"name": call["function"]["name"], "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": text[:half]}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": text[half:]}}]},
        {},
    ]
    parts = []
    for i, d in enumerate(deltas):
        ch = {"index": 0, "delta": d, "finish_reason": "tool_calls" if i == len(deltas) - 1 else None, "logprobs": None}
        ev = dict(base, object="chat.completion.chunk", choices=[ch])
        parts.append(chunk(b"data: " + json.dumps(ev).encode() + b"\n\n"))
    parts.append(chunk(b"data: [DONE]\n\n"))
    return http(200, "text/event-stream", b"".join(parts) + b"0\r\n\r\n", chunked=True)


def embed(path, body):
    inp = body.get("input", body.get("prompt", ""))
    items = inp if isinstance(inp, list) else [inp]
    vec = [round(0.01 * (i % 7), 2) for i in range(ARGS.dim)]
    if path == "/api/embeddings":
        return jresp({"embedding": vec})
    if path == "/api/embed":
        return jresp({"model": body.get("model", ""), "embeddings": [vec for _ in items]})
    return jresp({"object": "list", "model": body.get("model", ""),
                  "data": [{"object": "embedding", "index": i, "embedding": vec} for i in range(len(items))],
                  "usage": {"prompt_tokens": 1, "total_tokens": 1}})


def handle(method, path, headers, raw):
    path = path.split("?", 1)[0]
    if method in ("GET", "HEAD"):
        if path in ("/api/ps", "/api/tags"):
            key = ("models",)
            if key not in CACHE:
                CACHE[key] = jresp({"models": [
                    {"name": m, "model": m, "size": 1, "digest": "0" * 12, "expires_at": CREATED,
                     "size_vram": 0, "details": {"format": "gguf", "family": "llama"}} for m in MODELS]})
            return CACHE[key]
        if path == "/v1/models":
            return jresp({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in MODELS]})
        if path == "/":
            return http(200, "text/plain", b"Ollama is running")
        if path == "/health":
            return http(200, "application/json", b'{"status":"OK"}')
        return jresp({"error": "not found"}, 404)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return jresp({"error": "bad json"}, 400)
    if path in ("/api/embeddings", "/api/embed", "/v1/embeddings"):
        if ARGS.models and body.get("model", "") not in MODELS:
            return jresp({"error": "model '%s' not found" % body.get("model", "")}, 404)
        return embed(path, body)
    if path in ("/api/show", "/api/pull"):
        return jresp({"status": "success"})
    gen = {"/api/generate": (ollama_gen, True), "/api/chat": (ollama_gen, True),
           "/v1/chat/completions": (openai_gen, False), "/v1/completions": (openai_gen, False)}.get(path)
    if gen is None:
        return jresp({"error": "not found"}, 404)
    fn, default_stream = gen
    model = body.get("model", "")
    if ARGS.models and model not in MODELS:
        return jresp({"error": "model '%s' not found" % model}, 404)
    stream = bool(body.get("stream", default_stream))
    if path in ("/api/chat", "/v1/chat/completions") and wants_tool_call(model, body):
        return tool_answer(path, model, body, stream)
    if path == "/api/generate":
        call = raw_tool_call(body)
        if call is not None:
            return raw_tool_answer(model, call, stream)
    n = ntokens(body, headers)
    key = (path, model, n, stream)
    r = CACHE.get(key)
    if r is None:
        r = CACHE[key] = fn(path, model, n, stream)
    return r


class Proto(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buf[:end].split(b"\r\n")
            try:
                method, target, _ = lines[0].decode("latin-1").split(" ", 2)
            except ValueError:
                self.t.close()
                return
            headers = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(b":")
                headers[k.strip().lower()] = v.strip()
            clen = int(headers.get(b"content-length", b"0"))
            if len(self.buf) < end + 4 + clen:
                return
            raw = self.buf[end + 4:end + 4 + clen]
            self.buf = self.buf[end + 4 + clen:]
            resp = handle(method, target, headers, raw)
            if method == "HEAD":
                resp = resp.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            self.t.write(resp)
            if headers.get(b"connection", b"").lower() == b"close":
                self.t.close()
                return


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=11434)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--models", default="", help="comma-separated model names to serve (default: a fixed Llama list)")
    p.add_argument("--tool-calls", action="store_true", help="answer every request that offers tools with a call")
    ARGS = p.parse_args()
    if ARGS.models:
        MODELS[:] = [m for m in ARGS.models.split(",") if m]
    try:
        import uvloop
        uvloop.install()
        loopname = "uvloop"
    except ImportError:
        loopname = "asyncio"

    async def serve():
        srv = await asyncio.get_running_loop().create_server(Proto, ARGS.host, ARGS.port, backlog=1024)
        print("fake backend on http://%s:%d (%s, default %d tokens)" % (ARGS.host, ARGS.port, loopname, ARGS.tokens), flush=True)
        async with srv:
            await srv.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
