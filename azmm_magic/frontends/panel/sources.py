"""The panel's image sources and the chosen images: the upload button, the drop zone, the path/glob/URL box, the
picker of image variables, and the thumbnails (each with a remove button) of what Send will send."""

from __future__ import annotations

import base64
import html
import shlex
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from azmm_magic.core.errors import AzureVisionError, ConfigError
from azmm_magic.frontends.panel.dropzone import DropZone

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage
    from azmm_magic.core.settings import Detail, Settings

THUMB_WIDTH = 112  # px; the same as .azmm-chosen in panel.css
#: What the upload button offers: images (HEIC/AVIF phone photos too), PDFs (their pages) and videos (their frames).
ACCEPT = "image/*,.heic,.heif,.avif,application/pdf,.pdf,video/*,.mp4,.mov,.m4v,.webm,.mkv,.avi"


@dataclass(eq=False)
class ImageEntry:
    """An image chosen in the panel: what to prepare, and how a ``%%azure_vision`` cell would name it."""

    label: str
    source: Any  # a path or URL string, bytes (an upload), or an image object from a variable
    cell_ref: str | None  # the -i value for the equivalent cell; None for an upload (saved on "to new cell")
    upload_name: str | None = None
    part: Any = None  # an uploaded PDF's page or video's frame (``source`` holds the whole file)
    fragment: str = ""  # its ``#page=``/``#t=`` fragment, for the equivalent cell
    prepared: dict[tuple[str, str], PreparedImage] = field(default_factory=dict)


class ImageSources:
    """The image inputs of one panel and the list of chosen images (``entries``).

    ``settings()`` and ``detail()`` give the current settings and detail control value; ``guard(action)`` runs a
    UI action and shows a user mistake in the panel; ``changed()`` is called when the chosen images change.
    """

    def __init__(self, *, settings: Callable[[], Settings], detail: Callable[[], Detail],
                 namespace: MutableMapping[str, Any], guard: Callable[[Callable[[], Any]], None],
                 changed: Callable[[], None]) -> None:
        self._settings = settings
        self._detail = detail
        self._ns = namespace
        self._guard = guard
        self._changed = changed
        self.entries: list[ImageEntry] = []

        self.upload = w.FileUpload(accept=ACCEPT, multiple=True, description="Choose files", icon="upload",
                                   layout=w.Layout(width="auto", flex="0 0 auto"))
        self.upload.add_class("azmm-upload")
        self.drop = DropZone(layout=w.Layout(width="auto", flex="0 0 auto"))
        self.source_text = w.Text(placeholder="path, glob (photos/*.jpg) or https:// URL",
                                  layout=w.Layout(flex="1 1 220px", width="auto", min_width="160px"))
        self.source_text.add_class("azmm-source")
        self.add_source_button = w.Button(description="Add", tooltip="Add the images at this path, glob or URL",
                                          layout=w.Layout(width="auto"))
        self.variable_picker = w.Dropdown(options=[], layout=w.Layout(width="auto", min_width="150px"),
                                          tooltip="Image variables in this notebook")
        self.variable_picker.add_class("azmm-variables")
        self.refresh_variables_button = w.Button(icon="refresh", tooltip="Look for image variables again",
                                                 layout=w.Layout(width="36px"))
        self.add_variable_button = w.Button(description="Add variable", layout=w.Layout(width="auto"))
        self.thumbnails = w.HBox(layout=w.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.thumbnails.add_class("azmm-thumbs")

        self.upload.observe(self._on_upload, names="value")
        self.drop.on_msg(self._on_drop_msg)
        self.add_source_button.on_click(lambda _: self._guard(self._add_source))
        self.add_variable_button.on_click(lambda _: self._guard(self._add_variable))
        self.refresh_variables_button.on_click(lambda _: self.refresh_variables())
        self.refresh_variables()

    # ----- the chosen images ------------------------------------------------------------------------------------
    def images(self) -> list[PreparedImage]:
        """The chosen images, prepared for the current detail."""
        return [self.prepared(e) for e in self.entries]

    def add_images(self, source: Any, *, label: str | None = None, cell_ref: str | None = None) -> int:
        """Add images: a path, glob or URL string, an image object, or ``bytes`` (named by ``label``)."""
        from azmm_magic.core.images import expand_sources, looks_like_image, prepare_images

        s = self._settings()
        detail = self._detail()
        key = (detail, s.token_rule)
        prepared = prepare_images(source, detail=detail, rule=s.token_rule, inline_urls=s.inline_urls,
                                  max_bytes=s.max_image_bytes, max_images=s.max_images)
        if len(self.entries) + len(prepared) > s.max_images:
            raise ConfigError(
                f"At most {s.max_images} images per request (the image limit setting); remove some first."
            )
        new: list[ImageEntry] = []
        if isinstance(source, (bytes, bytearray, memoryview)):
            name = label or prepared[0].source
            if len(prepared) == 1:
                image = replace(prepared[0], source=name)
                new.append(ImageEntry(name, bytes(source), None, upload_name=name, prepared={key: image}))
            else:  # an uploaded PDF or video: one entry per page or frame, named after the file
                base, data = f"<bytes {len(source)} B>", bytes(source)
                for leaf, image in zip(expand_sources(data), prepared, strict=True):
                    caption = image.source.replace(base, name, 1)
                    new.append(ImageEntry(caption, data, None, upload_name=name, part=leaf,
                                          fragment=f"#{getattr(leaf, 'fragment', '')}",
                                          prepared={key: replace(image, source=caption)}))
        elif isinstance(source, str) and not looks_like_image(source):
            for image in prepared:  # a glob (or a PDF, a video) becomes one entry per file (page, frame)
                ref = image.ref or image.url or image.source
                new.append(ImageEntry(image.source, ref, shlex.quote(ref), prepared={key: image}))
        else:
            if len(prepared) != 1:
                raise ConfigError("Add one image at a time from a variable (this one holds several).")
            new.append(ImageEntry(label or prepared[0].source, source, cell_ref, prepared={key: prepared[0]}))
        self.entries.extend(new)
        self._redraw()
        return len(new)

    def remove_image(self, index: int) -> None:
        """Remove the chosen image at ``index``."""
        del self.entries[index]
        self._redraw()

    def prepared(self, entry: ImageEntry) -> PreparedImage:
        """``entry`` prepared for the current detail and token rule (kept, so a detail switch back is free)."""
        from azmm_magic.core.images import prepare_images

        s = self._settings()
        key = (self._detail(), s.token_rule)
        image = entry.prepared.get(key)
        if image is None:
            source = entry.part if entry.part is not None else entry.source
            image = prepare_images(source, detail=key[0], rule=key[1], inline_urls=s.inline_urls,
                                   max_bytes=s.max_image_bytes, max_images=1)[0]
            if entry.upload_name:
                image = replace(image, source=entry.label if entry.part is not None else entry.upload_name)
            entry.prepared[key] = image
        return image

    def _redraw(self) -> None:
        items = []
        for entry in self.entries:
            try:
                pic = chooser_thumb(self.prepared(entry))
            except AzureVisionError as e:
                pic = (f"<div class='azmm-note' style='width: {THUMB_WIDTH}px'>{html.escape(entry.label)}: "
                       f"{html.escape(str(e))}</div>")
            remove = w.Button(description="remove", icon="times", tooltip=f"Remove {entry.label}",
                              layout=w.Layout(width=f"{THUMB_WIDTH}px", height="24px", margin="0"))
            remove.add_class("azmm-remove")
            remove.on_click(lambda _b, e=entry: self._remove_entry(e))
            box = w.VBox([w.HTML(pic, layout=w.Layout(margin="0")), remove],
                         layout=w.Layout(align_items="center", width="auto"))
            box.add_class("azmm-thumb")
            items.append(box)
        self.thumbnails.children = items
        self._changed()

    def _remove_entry(self, entry: ImageEntry) -> None:
        if entry in self.entries:
            self.remove_image(self.entries.index(entry))

    # ----- the inputs ---------------------------------------------------------------------------------------------
    def refresh_variables(self) -> None:
        """List the image variables of the notebook (PIL images, arrays, figures, bytes) in the picker."""
        from azmm_magic.core.images import looks_like_image

        names = sorted(
            name for name, value in list(self._ns.items())
            if not name.startswith("_") and not isinstance(value, type) and _safe_check(looks_like_image, value)
        )
        self.variable_picker.options = names
        self.variable_picker.value = names[0] if names else None
        self.add_variable_button.disabled = not names

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        self._guard(lambda: self._add_files([(f["name"], bytes(f["content"])) for f in files]))
        self.upload.value = ()  # so choosing the same file again adds it again

    def _on_drop_msg(self, _widget: Any, content: Mapping[str, Any], buffers: list[Any]) -> None:
        if content.get("type") == "files":
            meta = content.get("files") or []
            self._guard(lambda: self._add_files([(m.get("name") or "upload", bytes(b)) for m, b in zip(meta, buffers, strict=False)]))

    def _add_files(self, files: list[tuple[str, bytes]]) -> None:
        problems = []
        for name, data in files:  # a bad file never loses the others
            try:
                self.add_images(data, label=name)
            except AzureVisionError as e:
                problems.append(f"{name}: {e}")
        if problems:
            raise ConfigError("; ".join(problems))

    def _add_source(self) -> None:
        text = self.source_text.value.strip()
        if not text:
            raise ConfigError("Type a path, a glob such as photos/*.jpg, or an https:// URL, then press Add.")
        self.add_images(text)
        self.source_text.value = ""

    def _add_variable(self) -> None:
        name = self.variable_picker.value
        if not name:
            raise ConfigError("No image variable is selected; define one (a PIL image, array or figure) and refresh.")
        if name not in self._ns:
            self.refresh_variables()
            raise ConfigError(f"The variable {name!r} no longer exists; the list was refreshed.")
        self.add_images(self._ns[name], label=name, cell_ref="{" + name + "}")


def chooser_thumb(image: PreparedImage) -> str:
    """A small fixed-size thumbnail with its caption (styled by .azmm-chosen in panel.css)."""
    from azmm_magic.display.thumbnails import image_caption

    if image.data is None and image.url:
        src = image.url
    else:
        src = "data:image/png;base64," + base64.b64encode(image.thumbnail_png(2 * THUMB_WIDTH)).decode("ascii")
    cap = html.escape(image_caption(image))
    return (
        f"<div class='azmm-chosen'><div class='azmm-chosen-frame'><img src='{html.escape(src, quote=True)}' "
        f"alt='{cap}' title='{cap}'/></div><div class='azmm-chosen-caption'>{cap}</div></div>"
    )


def _safe_check(check: Callable[[object], bool], value: object) -> bool:
    try:
        return bool(check(value))
    except Exception:  # noqa: BLE001 - an odd object in the namespace must not break the picker
        return False


__all__ = ["ACCEPT", "ImageEntry", "ImageSources", "chooser_thumb", "THUMB_WIDTH"]
