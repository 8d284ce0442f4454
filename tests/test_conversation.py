"""Conversations (--chat): earlier turns and their images are sent again, within the budgets."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.features.chat import Conversation
from tests.conftest import make_png


def _roles(body):
    return [m["role"] for m in body["messages"]]


def _image_parts(message):
    return [p for p in message["content"] if isinstance(message["content"], list) and p["type"] == "image_url"]


def test_chat_sends_history_with_images_on_the_wire(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    first = shell.run_cell_magic("azure_vision", "--chat -i img --no-stream", "What colour is it?")
    second = shell.run_cell_magic("azure_vision", "--chat --no-stream", "And its size?")
    b1, b2 = (r["body"] for r in emulator.chat_requests())
    assert _roles(b1) == ["user"]
    assert _roles(b2) == ["user", "assistant", "user"]
    assert b2["messages"][0]["content"][0]["text"] == "What colour is it?"
    assert len(_image_parts(b2["messages"][0])) == 1  # the first turn's image is sent again
    assert b2["messages"][1]["content"] == first.text
    assert "Earlier turns: 2 messages" in second.text
    assert second.usage.prompt_tokens > first.usage.prompt_tokens  # the image is billed again


def test_named_conversations_are_separate_and_subcommands(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    shell.run_cell_magic("azure_vision", "--chat a -i img --no-stream", "one")
    shell.run_cell_magic("azure_vision", "--chat b --no-stream", "other")
    shell.run_cell_magic("azure_vision", "--chat a --no-stream", "two")
    bodies = [r["body"] for r in emulator.chat_requests()]
    assert _roles(bodies[1]) == ["user"] and len(bodies[2]["messages"]) == 3
    listing = repr(shell.run_line_magic("azure_vision", "chat list"))
    assert "a             2" in listing.replace("  ", "  ") or ("a" in listing and "2" in listing)
    shown = repr(shell.run_line_magic("azure_vision", "chat show a"))
    assert "one" in shown and "two" in shown and "2 turn(s)" in shown
    shell.run_line_magic("azure_vision", "chat reset a")
    with pytest.raises(UsageError, match="No conversation named 'a'"):
        shell.run_line_magic("azure_vision", "chat show a")
    shell.run_cell_magic("azure_vision", "--chat a --no-stream", "fresh")
    assert _roles(emulator.chat_requests()[-1]["body"]) == ["user"]


def test_budgets_drop_turns_and_old_images_and_say_so(shell, emulator, tmp_path):
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        shell.user_ns[f"img{i}"] = str(make_png(tmp_path / f"c{i}.png", color=colour))
    shell.run_line_magic("config", "AzureVision.chat_turns = 2")
    shell.run_line_magic("config", "AzureVision.chat_image_turns = 1")
    for i in range(3):
        shell.run_cell_magic("azure_vision", f"--chat -i img{i} --no-stream", f"turn {i}")
    out = shell.run_cell_magic("azure_vision", "--chat --no-stream", "last")
    body = emulator.chat_requests()[-1]["body"]
    assert _roles(body) == ["user", "assistant", "user", "assistant", "user"]  # 2 of 3 earlier turns
    older, newer = body["messages"][0], body["messages"][2]
    assert older["content"][0]["text"] == "turn 1" and newer["content"][0]["text"] == "turn 2"
    assert _image_parts(older) == [] and "not sent again: c1.png" in older["content"][1]["text"]
    assert len(_image_parts(newer)) == 1
    footer = out.footer()
    assert "sent the last 2 of 3 earlier turns" in footer and "images of 1 older turn(s) not sent again" in footer


def test_rerunning_a_conversation_replays_from_cache(shell, emulator, red_png):
    """A fresh session re-running the same chat cells gets every answer from the cache (keys cover history)."""
    shell.user_ns["img"] = str(red_png)
    answers = [shell.run_cell_magic("azure_vision", "--chat -i img --no-stream", "q1").text,
               shell.run_cell_magic("azure_vision", "--chat --no-stream", "q2").text]
    n = emulator.count()
    shell.run_line_magic("azure_vision", "chat reset")
    again = [shell.run_cell_magic("azure_vision", "--chat -i img", "q1"),
             shell.run_cell_magic("azure_vision", "--chat", "q2")]
    assert emulator.count() == n
    assert [r.text for r in again] == answers and all(r.cached for r in again)
    # a different earlier turn gives a different key: not a stale answer
    shell.run_line_magic("azure_vision", "chat reset")
    shell.run_cell_magic("azure_vision", "--chat --no-stream", "other first question")
    shell.run_cell_magic("azure_vision", "--chat --no-stream", "q2")
    assert emulator.count() == n + 2


def test_conversation_python_api(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")
    chat = Conversation("api")
    chat.ask(client, "first", images=[red_png])
    second = chat.ask(client, "second", max_turns=1)
    assert len(chat) == 2 and second.text.count("Earlier turns: 2") == 1
    body = emulator.chat_requests()[-1]["body"]
    assert _roles(body) == ["user", "assistant", "user"]


def test_conversation_state_is_per_shell(shell):
    magics = shell.magics_manager.registry["AzureVision"]
    import azmm_magic.features.chat as module

    assert magics.conversations is not None
    assert not any(isinstance(v, module.Conversations) for v in vars(module).values())
