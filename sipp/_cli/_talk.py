"""``sipp query`` and ``sipp chat``: try a model without writing code."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio

from .._client import SippClient
from .._errors import SippError

_ENDPOINT = "cli"


def _descriptor(args: argparse.Namespace) -> dict[str, Any]:
    if args.descriptor:
        loaded = json.loads(args.descriptor)
        if not isinstance(loaded, dict):
            raise SystemExit("--descriptor must be a JSON object")
        return loaded
    if args.model:
        return {"kind": "local", "source": args.model}
    raise SystemExit("give --model PATH (a .gguf file) or --descriptor JSON")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"emit_tokens": True}
    if args.max_tokens is not None:
        options["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        options["temperature"] = args.temperature
    return options


async def _stream(run: Any) -> str:
    async for batch in run.tokens:
        sys.stdout.write(batch.text)
        sys.stdout.flush()
    response = await run
    sys.stdout.write("\n")
    return str(response.text)


async def _query(args: argparse.Namespace) -> None:
    async with SippClient(show_progress=True) as client:
        await client.add(_ENDPOINT, _descriptor(args))
        await _stream(client.query(args.prompt, **_options(args)))


async def _chat(args: argparse.Namespace) -> None:
    history: list[dict[str, str]] = []
    if args.system:
        history.append({"role": "system", "content": args.system})
    async with SippClient(show_progress=True) as client:
        await client.add(_ENDPOINT, _descriptor(args))
        print("Type a message; an empty line or Ctrl-D ends the chat.", file=sys.stderr)
        while True:
            try:
                line = await anyio.to_thread.run_sync(input, "> ")
            except EOFError:
                break
            if not line.strip():
                break
            history.append({"role": "user", "content": line})
            answer = await _stream(client.chat(history, **_options(args)))
            history.append({"role": "assistant", "content": answer})


def _runner(command: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        try:
            anyio.run(command, args)
        except SippError as exc:
            print(f"sipp: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        return 0

    return handler


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="path to a local .gguf model")
    parser.add_argument("--descriptor", help="an endpoint descriptor as JSON (any kind)")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=None)


def add_talk_commands(commands: Any) -> None:
    query = commands.add_parser("query", help="complete one prompt, streaming the answer")
    query.add_argument("prompt")
    _common(query)
    query.set_defaults(handler=_runner(_query))
    chat = commands.add_parser("chat", help="an interactive, streaming chat")
    chat.add_argument("--system", help="a system message to start the conversation")
    _common(chat)
    chat.set_defaults(handler=_runner(_chat))
