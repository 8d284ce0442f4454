"""The question and its options: the prompt, deployment, detail, max tokens, temperature and chat boxes, and the
live token estimate under them."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from azmm_magic.core.errors import AzureVisionError, ConfigError
from azmm_magic.frontends.panel.compat import tooltip

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage
    from azmm_magic.core.settings import Settings
    from azmm_magic.features.chat import Conversations

NO_CHAT = "(none)"


class RequestOptions:
    """The panel's question controls, initialised from ``settings``: ``prompt``, ``deployment``, ``detail``,
    ``max_tokens``, ``temperature``, ``chat`` (a conversation name, as ``--chat NAME``) and ``estimate``."""

    def __init__(self, settings: Settings) -> None:
        self.prompt = w.Textarea(placeholder="Ask about the images…  (Ctrl/Cmd+Enter sends)",
                                 layout=w.Layout(width="auto", height="5.5em"))  # auto: 100% + margins overflowed
        self.prompt.add_class("azmm-prompt")
        small = {"style": {"description_width": "initial"}}
        self._deployment_setting = settings.deployment or ""  # what the deployment box last took from settings
        self.deployment = w.Text(value=self._deployment_setting, description="deployment",
                                 placeholder="(setting)", layout=w.Layout(width="210px"), **small)
        self.detail = w.Dropdown(options=["auto", "low", "high"], value=settings.detail, description="detail",
                                 layout=w.Layout(width="120px"), **small)
        self.max_tokens = w.BoundedIntText(value=settings.max_tokens, min=1, max=1_000_000, description="max tokens",
                                           layout=w.Layout(width="155px"), **small)
        self.temperature = w.Text(value="" if settings.temperature is None else f"{settings.temperature:g}",
                                  description="temperature", placeholder="default", layout=w.Layout(width="175px"),
                                  **small)
        self.chat = tooltip(w.Combobox(value="", options=[NO_CHAT], ensure_option=False, description="chat",
                                       placeholder=NO_CHAT, layout=w.Layout(width="190px"), **small),
                            "Continue a conversation (like --chat NAME): pick one or type a new name")
        self.chat.add_class("azmm-chat")
        self.estimate = w.HTML()
        self.estimate.add_class("azmm-estimate")

    def values(self) -> dict[str, Any]:
        """The request options (``deployment``, ``detail``, ``max_tokens``, ``temperature``) from the controls."""
        temperature_text = self.temperature.value.strip()
        temperature: float | None = None
        if temperature_text:
            try:
                temperature = float(temperature_text)
            except ValueError:
                raise ConfigError(
                    f"temperature {temperature_text!r} is not a number; use e.g. 0.2, or leave it empty for the default."
                ) from None
        return {
            "deployment": self.deployment.value.strip() or None,
            "detail": self.detail.value,
            "max_tokens": int(self.max_tokens.value),
            "temperature": temperature,
        }

    def follow_settings(self, settings: Settings) -> None:
        """The deployment box follows the session's deployment setting (e.g. after ``%azure_vision emulator stop``
        and ``%config AzureVision.deployment = ...``) unless a deployment was typed in it."""
        current = settings.deployment or ""
        if self.deployment.value.strip() == self._deployment_setting:
            self.deployment.value = current
        self._deployment_setting = current

    def chat_name(self) -> str | None:
        """The conversation to continue, or None."""
        name = self.chat.value.strip()
        return None if name in ("", NO_CHAT) else name

    def list_conversations(self, conversations: Conversations) -> None:
        """Offer the session's conversations in the ``chat`` box (the value typed or chosen stays)."""
        self.chat.options = [NO_CHAT, *conversations.names()]

    def update_estimate(self, images: Callable[[], Sequence[PreparedImage]], settings: Callable[[], Settings],
                        conversations: Conversations) -> None:
        """Show the input token estimate of the question as it stands (and the earlier turns of its chat);
        ``images()`` and ``settings()`` are called here, so an error in them shows as "no estimate: ..."."""
        from azmm_magic.features.client import VisionRequest

        detail = self.detail.value
        try:
            s = settings()
            chosen = images()
            if not chosen and not self.prompt.value.strip():  # nothing asked yet: no figure to show
                self.estimate.value = "<span class='azmm-note'>add images and a question to see the token estimate</span>"
                return
            request = VisionRequest(prompt=self.prompt.value, images=tuple(chosen), detail=detail,
                                    system=s.system_prompt)
            total = request.estimate_prompt_tokens(s.token_rule)
            per = " + ".join(str(i.estimate_tokens(detail, s.token_rule)) for i in chosen)
            per = f" (images: {per})" if per else ""
            text = (f"≈ {total:,} input tokens{per} · up to {self.max_tokens.value:,} output tokens "
                    f"· rule {s.token_rule}")
            name = self.chat_name()
            if name is not None and name in conversations and len(conversations.get(name)):
                earlier = min(len(conversations.get(name)), s.chat_turns)
                text += f" · plus {plural(earlier, 'earlier turn')} of chat '{name}'" if earlier else ""
        except AzureVisionError as e:
            text = f"no estimate: {e}"
        self.estimate.value = f"<span class='azmm-note'>{html.escape(text)}</span>"


def plural(count: int, noun: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


__all__ = ["NO_CHAT", "RequestOptions", "plural"]
