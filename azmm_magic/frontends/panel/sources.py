"""The panel's image sources and the chosen images: the upload button, the drop zone, the path/glob/URL box, the
picker of image variables, and the thumbnails (each with a remove button) of what Send will send."""

from __future__ import annotations

import html
import shlex
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from azmm_magic.core.errors import AzureVisionError, ConfigError, ImageInputError
from azmm_magic.core.urls import redact_url
from azmm_magic.frontends.panel.compat import chosen_files, close_tree, show_uploads, shown_count, tooltip
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
    variable: str | None = None  # the notebook variable it came from (its captions name it)

    @property
    def name(self) -> str | None:
        """What its captions call it: the upload's file name or the variable's name (None: the source says)."""
        return self.upload_name or self.variable


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
        self._boxes: dict[ImageEntry, w.VBox] = {}  # each chosen image's thumbnail and remove button
        self._counting = False  # True while upload.value is set to the count of uploads (not a new selection)

        # FileUpload draws "Choose files (N)": N follows the uploaded or dropped images chosen (panel/upload.py sets
        # it on ipywidgets 7 and 8 alike).
        self.upload = tooltip(w.FileUpload(accept=ACCEPT, multiple=True, description="Choose files", icon="upload",
                                           layout=w.Layout(width="auto", flex="0 0 auto")),
                              "Choose images, PDFs or videos (the number chosen is in brackets)")
        self.upload.add_class("azmm-upload")
        self.drop = DropZone(layout=w.Layout(width="auto", flex="0 0 auto"))
        self.source_text = w.Text(placeholder="path, glob (photos/*.jpg) or https:// URL",
                                  layout=w.Layout(flex="1 1 220px", width="auto", min_width="160px"))
        self.source_text.add_class("azmm-source")
        self.add_source_button = w.Button(description="Add", tooltip="Add the images at this path, glob or URL",
                                          layout=w.Layout(width="auto"))
        self.variable_picker = tooltip(w.Dropdown(options=[], layout=w.Layout(width="auto", min_width="150px")),
                                       "Image variables in this notebook")
        self.variable_picker.add_class("azmm-variables")
        self.refresh_variables_button = w.Button(icon="refresh", tooltip="Look for image variables again",
                                                 layout=w.Layout(width="36px"))
        self.add_variable_button = w.Button(description="Add variable", layout=w.Layout(width="auto"))
        self.variable_note = w.HTML()  # the image-like variables not offered, and why
        self.variable_note.add_class("azmm-variable-note")
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
                # the equivalent cell names a signed URL without its signature (a credential, never saved)
                new.append(ImageEntry(image.source, ref, shlex.quote(redact_url(ref)), prepared={key: image}))
        else:
            if len(prepared) != 1:
                raise ConfigError("Add one image at a time from a variable (this one holds several).")
            image = replace(prepared[0], source=label) if label else prepared[0]
            new.append(ImageEntry(label or prepared[0].source, source, cell_ref, prepared={key: image},
                                  variable=label))
        self.entries.extend(new)
        self._redraw()
        return len(new)

    def shows(self, images: Sequence[PreparedImage]) -> bool:
        """True when ``images`` are the chosen images, in order (prepared for any detail), i.e. the thumbnails
        row shows them."""
        if not images or len(images) != len(self.entries):
            return False
        return all(image.sha256 in {p.sha256 for p in entry.prepared.values()}
                   for image, entry in zip(images, self.entries, strict=True))

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
            if entry.part is not None and entry.upload_name:
                image = replace(image, source=entry.label)  # a PDF page or video frame: "clip.mp4 @ 00:12.0"
            elif entry.name:
                image = replace(image, source=entry.name)
            entry.prepared[key] = image
        return image

    def _redraw(self) -> None:
        """Show the chosen images: a thumbnail for each new entry; a removed entry's widgets are closed."""
        boxes = {}
        for entry in self.entries:
            kept = self._boxes.pop(entry, None)
            boxes[entry] = kept if kept is not None else self._thumb_box(entry)
        gone, self._boxes = self._boxes, boxes
        self.thumbnails.children = tuple(boxes.values())
        for box in gone.values():
            close_tree(box)
        self._count_uploads()
        self._changed()

    def _thumb_box(self, entry: ImageEntry) -> w.VBox:
        try:
            pic = chooser_thumb(self.prepared(entry))
        except AzureVisionError as e:
            pic = (f"<div class='azmm-note' style='width: {THUMB_WIDTH}px'>{html.escape(entry.label)}: "
                   f"{html.escape(str(e))}</div>")
        remove = w.Button(description="remove", icon="times", tooltip=f"Remove {entry.label}",
                          layout=w.Layout(width=f"{THUMB_WIDTH}px", height="24px", margin="0"))
        remove.add_class("azmm-remove")
        remove.on_click(lambda _b: self._remove_entry(entry))
        box = w.VBox([w.HTML(pic, layout=w.Layout(margin="0")), remove],
                     layout=w.Layout(align_items="center", width="auto"))
        box.add_class("azmm-thumb")
        return box

    def _count_uploads(self, *, force: bool = False) -> None:
        """Make the upload button read "Choose files (N)", N = the chosen uploads (``force``: even when it already
        does, to drop a new selection's bytes from the widget)."""
        chosen = [(e.upload_name, len(e.source)) for e in self.entries if e.upload_name is not None]
        if force or shown_count(self.upload) != len(chosen):
            self._counting = True
            try:
                show_uploads(self.upload, chosen)
            finally:
                self._counting = False

    def _remove_entry(self, entry: ImageEntry) -> None:
        if entry in self.entries:
            self.remove_image(self.entries.index(entry))

    # ----- the inputs ---------------------------------------------------------------------------------------------
    def refresh_variables(self) -> None:
        """List the notebook's variables that can be sent as an image (PIL images, figures, image arrays and
        bytes) in the picker; the ones that look like images but would fail are named in ``variable_note``, with
        why. The selected variable stays selected while it is offered."""
        from azmm_magic.core.images import looks_like_image

        offered, refused = [], []
        for name, value in sorted(list(self._ns.items()), key=lambda item: item[0]):
            if name.startswith("_") or isinstance(value, type) or not _safe_check(looks_like_image, value):
                continue
            why = not_sendable(value)
            if why is None:
                offered.append(name)
            else:
                refused.append((name, why))
        selected = self.variable_picker.value
        if tuple(offered) != tuple(self.variable_picker.options):
            self.variable_picker.options = offered
            self.variable_picker.value = selected if selected in offered else (offered[0] if offered else None)
        self.add_variable_button.disabled = not offered
        if refused:
            shown = [f"<code>{html.escape(name)}</code> ({html.escape(why)})" for name, why in refused[:3]]
            more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
            self.variable_note.value = f"<span class='azmm-note'>not offered: {'; '.join(shown)}{more}</span>"
        elif not offered:
            self.variable_note.value = ("<span class='azmm-note'>no image variables yet (PIL images, figures, "
                                        "uint8 or [0, 1] float arrays, image bytes)</span>")
        else:
            self.variable_note.value = ""

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        if self._counting:
            return
        files = chosen_files(self.upload, change)
        if not files:
            return
        try:
            self._guard(lambda: self._add_files(files))
        finally:
            self._count_uploads(force=True)  # the count of chosen uploads; the same file can be chosen again

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
        value = self._ns[name]
        try:
            self.add_images(value, label=name, cell_ref="{" + name + "}")
        except AzureVisionError as e:
            raise naming_variable(e, name, value) from e


def chooser_thumb(image: PreparedImage) -> str:
    """A small fixed-size thumbnail with its caption (styled by .azmm-chosen in panel.css)."""
    from azmm_magic.core.images import thumbnail
    from azmm_magic.display.thumbnails import image_caption, thumbnail_src
    from azmm_magic.display.untrusted import html_label

    if image.data is None and image.url:
        src = thumbnail_src(image)  # None for a signed URL: never written into the widget's state
    else:
        made = thumbnail(image, 2 * THUMB_WIDTH)
        src = None if made is None else made.data_url()
    cap = html_label(image_caption(image))
    picture = (f"<img src='{html.escape(src, quote=True)}' alt='{cap}' title='{cap}'/>" if src is not None
               else f"<span title='{cap}'>{'signed URL' if image.url else 'no picture'}</span>")
    return (
        f"<div class='azmm-chosen'><div class='azmm-chosen-frame'>{picture}</div>"
        f"<div class='azmm-chosen-caption'>{cap}</div></div>"
    )


def not_sendable(value: object) -> str | None:
    """Why a variable that looks like an image cannot be sent as one (None: it can), checked without preparing
    it: the pyplot module (its figure is gone after the cell in Jupyter), arrays of other shapes or dtypes than
    :func:`~azmm_magic.core.images.prepare_images` takes, float arrays outside [0, 1], bytes that are no image."""
    import sys

    try:
        if value is sys.modules.get("matplotlib.pyplot"):
            return "the pyplot module: keep a figure, fig = plt.gcf()"
        if isinstance(value, (bytes, bytearray, memoryview)):
            from azmm_magic.core.images import expand_sources, probe_size

            leaves = expand_sources(bytes(value) if isinstance(value, memoryview) else value)
            return None if leaves and probe_size(leaves[0]) is not None else "bytes that are not an image file"
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(value, numpy.ndarray):
            return _array_problem(numpy, value)
    except Exception:  # noqa: BLE001 - an odd object: not offered, rather than a broken picker
        return "cannot be read as an image"
    return None


def _array_problem(np: Any, arr: Any) -> str | None:
    shape = tuple(arr.shape)
    if not (arr.ndim == 2 or (arr.ndim == 3 and shape[2] in (1, 3, 4))) or 0 in shape:
        return f"a {'×'.join(map(str, shape))} array is not an image: HxW, HxWx3 or HxWx4"
    kind = arr.dtype.kind
    if arr.dtype == np.uint8 or kind == "b":
        return None
    if kind != "f":
        return f"{arr.dtype} array: convert with .astype(np.uint8)"
    if arr.size > FLOAT_CHECK_LIMIT:
        return None  # too big to scan at each refresh; Add says what is wrong if anything is
    if not np.isfinite(arr).all():
        return "float array with NaN or infinite values"
    low, high = float(arr.min()), float(arr.max())
    if low < -1e-6 or high > 1 + 1e-6:
        return f"float values in [{low:g}, {high:g}]: scale to [0, 1]"
    return None


#: float arrays up to this many values are scanned for the [0, 1] range when the picker is refreshed
FLOAT_CHECK_LIMIT = 4_000_000


def naming_variable(error: AzureVisionError, name: str, value: object) -> AzureVisionError:
    """``error`` with the variable's name where the core described the object (``<numpy (200, 300) int64>``)."""
    from azmm_magic.core.images import expand_sources, leaf_label

    text = str(error)
    try:
        labels = [leaf_label(leaf) for leaf in expand_sources(value)]
    except Exception:  # noqa: BLE001 - the description is only used to find it in the message
        labels = []
    for label in labels:
        if label and label in text:
            text = text.replace(label, f"variable {name!r}")
            break
    else:
        text = f"variable {name!r}: {text}"
    kind = type(error) if type(error) in (ImageInputError, ConfigError) else ImageInputError
    return kind(text, settings=error.settings, remedy=error.remedy)


def _safe_check(check: Callable[[object], bool], value: object) -> bool:
    try:
        return bool(check(value))
    except Exception:  # noqa: BLE001 - an odd object in the namespace must not break the picker
        return False


__all__ = ["ACCEPT", "FLOAT_CHECK_LIMIT", "ImageEntry", "ImageSources", "chooser_thumb", "naming_variable",
           "not_sendable", "THUMB_WIDTH"]
