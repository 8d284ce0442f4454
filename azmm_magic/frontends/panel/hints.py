"""What to do about an error, worded for the panel's controls.

Core errors say what happened in Python-API terms and carry, as data, what fixes them: ``error.settings`` (the
settings to change) and ``error.remedy`` (``retry`` | ``credentials`` | ``emulator`` | ``record``). The panel
shows ``str(error)`` followed by :func:`panel_hint`: a setting the panel has a control for is fixed there,
any other one in a cell with ``%config``.
"""

from __future__ import annotations

from azmm_magic.core.errors import AzureVisionError
from azmm_magic.display.untrusted import label

#: settings the panel has a control for, and how to change them there
CONTROLS = {
    "deployment": "choose a deployment in the deployment box",
    "detail": "pick another value in the detail box",
    "max_tokens": "change the max tokens box",
    "temperature": "change the temperature box (empty for the service's default)",
}
CREDENTIALS = "set AZURE_OPENAI_API_KEY or run %azure_vision login in a cell"
REMEDIES = {
    "retry": "press Send again",
    "credentials": CREDENTIALS,
    "emulator": "run %azure_vision emulator in a cell to use the local emulator",
    "record": ("import the recorded answers in a cell with %azure_vision cache import FILE, "
               "or leave replay mode there with %config AzureVision.cache = 'sqlite'"),
    "each": "send fewer images at a time, or ask about each one in a cell with %%azure_vision --each",
}


def panel_hint(error: BaseException) -> str:
    """One sentence saying how to get past ``error`` with the panel ("" when the error says nothing about it).

    ``retry`` comes first (the cheapest), then the settings (the panel's own controls, then ``%config`` in a
    cell for the others), then the other remedies.
    """
    if not isinstance(error, AzureVisionError):
        return ""
    steps: list[str] = []
    if error.remedy == "retry":
        steps.append(REMEDIES["retry"])
    others = []
    for name in error.settings:
        if name in CONTROLS:
            steps.append(CONTROLS[name])
        elif name == "api_key":
            steps.append(CREDENTIALS)
        else:
            others.append(name)
    if others:
        names = " and ".join(others) + (" settings" if len(others) > 1 else " setting")
        steps.append(f"change the {names} in a cell ({', '.join(f'%config AzureVision.{n} = ...' for n in others)})")
    if error.remedy in REMEDIES and error.remedy != "retry":
        steps.append(REMEDIES[error.remedy])
    steps = list(dict.fromkeys(steps))  # credentials may come both as a setting and as the remedy
    if not steps:
        return ""
    sentence = ", or ".join(steps)
    return sentence[0].upper() + sentence[1:] + "."


def panel_message(error: BaseException) -> str:
    """``str(error)`` and the panel's hint, as the one line the panel shows."""
    text = label(str(error) if isinstance(error, AzureVisionError)
                 else f"Unexpected error: {type(error).__name__}: {error}")
    hint = panel_hint(error)
    if not hint:
        return text
    return f"{text} {hint}" if text.endswith((".", "!", "?", ":")) else f"{text}. {hint}"


__all__ = ["panel_hint", "panel_message"]
