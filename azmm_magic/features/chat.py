"""Conversations: ``%%azure_vision --chat [NAME]`` continues a named conversation.

Earlier turns (the user message with its images, and the answer) are sent again as ``history``. Two settings
bound the cost: ``chat_turns`` (most earlier turns sent) and ``chat_image_turns`` (only the newest K earlier turns
keep their images; older ones keep their text and a short note naming the image that was not re-sent). What
was left out is said in the result's footer (``VisionResult.notices``). The cache key covers the whole history,
so re-running a notebook from the top replays the same answers.

State lives in a :class:`Conversations` object owned by whoever asks (the magics instance of one shell, or your
own code); there is no module-level state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from azmm_magic.core.errors import ConfigError
from azmm_magic.core.images import PreparedImage, caption
from azmm_magic.core.request import user_parts

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.result import Usage, VisionResult
    from azmm_magic.core.settings import Detail, Settings
    from azmm_magic.features.client import VisionClient, VisionRequest

DEFAULT = "default"
#: the newest turns of a conversation that keep their images (older turns keep text and image names only, and
#: are sent again with a note in place of each image)
KEEP_IMAGE_TURNS = 50
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def check_name(name: str, where: str = "conversation") -> str:
    """``name`` if it is a valid conversation name (letters, digits, '_' or '-'); :class:`ConfigError` otherwise."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where} {name!r}: a conversation name is letters, digits, '_' or '-'.")
    return name


@dataclass(frozen=True)
class Turn:
    """One question and its answer, as they will be sent again. The images are kept as prepared images (shared
    with the result and the image memo); the message with their data URLs is built only when it is sent."""

    prompt: str
    answer: str
    deployment: str
    images: tuple[PreparedImage, ...] = ()
    detail: Detail = "auto"
    image_labels: tuple[str, ...] = ()
    usage: Usage | None = None
    cached: bool = False

    @property
    def user(self) -> dict[str, Any]:
        """The wire user message (text part + image parts)."""
        return self.user_message()

    def user_message(self, *, with_images: bool = True) -> dict[str, Any]:
        """The user message; without images each image part becomes a one-line note naming it."""
        if (with_images and self.images) or not self.image_labels:
            return {"role": "user", "content": user_parts(self.prompt, self.images, self.detail)}
        labels = iter(self.image_labels)
        note = lambda _image: f"[image from an earlier turn, not sent again: {next(labels, 'image')}]"  # noqa: E731
        if not self.images:  # let go (KEEP_IMAGE_TURNS): a note per image named
            return {"role": "user", "content": [{"type": "text", "text": self.prompt},
                                                *({"type": "text", "text": note(None)} for _ in self.image_labels)]}
        return {"role": "user", "content": user_parts(self.prompt, self.images, self.detail, note)}


@dataclass
class Conversation:
    """A named list of turns. :meth:`ask` continues it through a :class:`~azmm_magic.features.client.VisionClient`."""

    name: str = DEFAULT
    turns: list[Turn] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.turns)

    def history(self, max_turns: int = 10, image_turns: int | None = None) -> tuple[tuple[dict[str, Any], ...], tuple[str, ...]]:
        """(messages to send as history, notices for the footer) under the two budgets."""
        if max_turns < 0 or (image_turns is not None and image_turns < 0):
            raise ConfigError("chat_turns and chat_image_turns must be 0 or more.")
        selected = self.turns[len(self.turns) - max_turns:] if max_turns else []
        messages: list[dict[str, Any]] = []
        turns_without_images = 0
        for i, turn in enumerate(selected):
            age = len(selected) - i  # 1 = the newest earlier turn
            keep = image_turns is None or age <= image_turns
            if (not keep or not turn.images) and turn.image_labels:
                turns_without_images += 1
            messages.append(turn.user_message(with_images=keep))
            messages.append({"role": "assistant", "content": turn.answer})
        notices = []
        left_out = len(self.turns) - len(selected)
        if left_out:
            notices.append(
                f"chat '{self.name}': sent the last {len(selected)} of {len(self.turns)} earlier turns (chat_turns = {max_turns})"
            )
        if turns_without_images:
            notices.append(
                f"chat '{self.name}': images of {turns_without_images} older turn(s) not sent again "
                f"(chat_image_turns = {image_turns})"
            )
        return tuple(messages), tuple(notices)

    def record(self, request: VisionRequest, result: VisionResult) -> Turn:
        """Append the turn ``request`` → ``result`` (only complete answers belong in a conversation)."""
        if result.incomplete:
            raise ConfigError("An incomplete answer is not added to the conversation; ask again.", remedy="retry")
        turn = Turn(
            prompt=request.prompt,
            answer=result.text,
            deployment=result.deployment,
            images=tuple(request.images),
            detail=request.detail,
            image_labels=tuple(caption(i) for i in request.images),
            usage=result.usage,
            cached=result.cached,
        )
        self.turns.append(turn)
        if len(self.turns) > KEEP_IMAGE_TURNS:  # the turn that just got too old lets its images go
            old = self.turns[-KEEP_IMAGE_TURNS - 1]
            if old.images:
                self.turns[-KEEP_IMAGE_TURNS - 1] = replace(old, images=())
        return turn

    def ask(
        self,
        client: VisionClient,
        prompt: str,
        images: Iterable[object] | object = (),
        *,
        max_turns: int | None = None,
        image_turns: int | None = None,
        use_cache: bool = True,
        refresh: bool = False,
        **options: Any,
    ) -> VisionResult:
        """Ask the next question of this conversation. Budgets default to the client's ``chat_turns`` /
        ``chat_image_turns`` settings; ``options`` as for :meth:`VisionClient.ask`."""
        s = client.settings
        turn = self.next_turn(
            s.chat_turns if max_turns is None else max_turns, s.chat_image_turns if image_turns is None else image_turns
        )
        request = client.prepare(prompt, images, history=turn.history, **options)
        return turn.finish(request, client.send(request, use_cache=use_cache, refresh=refresh))

    def next_turn(self, max_turns: int = 10, image_turns: int | None = None) -> PendingTurn:
        """Start the next turn: the history to send under the two budgets, and the footer notices."""
        history, notices = self.history(max_turns, image_turns)
        return PendingTurn(self, history, notices)

    def reset(self) -> int:
        """Forget every turn; returns how many there were."""
        n = len(self.turns)
        self.turns.clear()
        return n

    def rows(self) -> list[tuple[str, ...]]:
        """Table rows: turn, prompt, images, answer (shortened), deployment, tokens."""

        def short(text: str, n: int = 70) -> str:
            text = " ".join(text.split())
            return text if len(text) <= n else text[: n - 1] + "…"

        return [
            (str(i), short(t.prompt), str(len(t.image_labels)), short(t.answer), t.deployment,
             (f"{t.usage.prompt_tokens:,} in / {t.usage.completion_tokens:,} out" if t.usage.reported
              else "usage not reported by the server") + (" · cached" if t.cached else "")
             if t.usage else "")
            for i, t in enumerate(self.turns, 1)
        ]


@dataclass(frozen=True)
class PendingTurn:
    """A question being asked in a conversation (or in none): what to send as ``history`` and what the footer
    says. The magic, the panel and :meth:`Conversation.ask` all go through it: build the request with
    ``history=turn.history``, then ``result = turn.finish(request, result)`` once the answer is in."""

    conversation: Conversation | None = None
    history: tuple[dict[str, Any], ...] = ()
    notices: tuple[str, ...] = ()

    def finish(self, request: VisionRequest, result: VisionResult) -> VisionResult:
        """``result`` with the conversation's footer notices; a complete answer is recorded as the next turn (an
        incomplete one, stopped or cut off, is not: the conversation stays as it was)."""
        if self.notices:
            result = result.with_(notices=result.notices + self.notices)
        if self.conversation is not None and not result.incomplete:
            self.conversation.record(request, result)
        return result


def start_turn(conversations: Conversations, name: str | None, settings: Settings) -> PendingTurn:
    """The next turn of conversation ``name`` under the ``chat_turns`` / ``chat_image_turns`` settings (created
    on first use); ``name=None`` (no ``--chat``) gives a turn with no history that records nothing."""
    if name is None:
        return PendingTurn()
    return conversations.get(check_name(name)).next_turn(settings.chat_turns, settings.chat_image_turns)


class Conversations:
    """The conversations of one session, by name (``default`` when no name is given)."""

    def __init__(self) -> None:
        self._by: dict[str, Conversation] = {}

    def get(self, name: str | None = None) -> Conversation:
        """The conversation ``name`` (created empty on first use)."""
        name = name or DEFAULT
        if name not in self._by:
            self._by[name] = Conversation(name)
        return self._by[name]

    def find(self, name: str | None = None) -> Conversation:
        """An existing conversation; :class:`ConfigError` naming the known ones otherwise."""
        name = name or DEFAULT
        if name not in self._by:
            known = ", ".join(self._by) or "none yet"
            raise ConfigError(f"No conversation named {name!r} (known: {known}); ask a first question in it to start it.")
        return self._by[name]

    def names(self) -> list[str]:
        return list(self._by)

    def reset(self, name: str | None = None) -> int:
        """Forget the turns of ``name``; returns how many there were (0 if it did not exist)."""
        conv = self._by.pop(name or DEFAULT, None)
        return len(conv) if conv is not None else 0

    def __contains__(self, name: object) -> bool:
        return name in self._by

    def __len__(self) -> int:
        return len(self._by)


__all__ = ["KEEP_IMAGE_TURNS", "Conversation", "Conversations", "PendingTurn", "Turn", "check_name", "start_turn"]
