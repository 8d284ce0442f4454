"""The names the frontends imported from one module before the display layer was split by job.

New code imports from the module named for the job: :mod:`~azmm_magic.display.bundle` (safe Markdown, tables,
messages, ``Bundle``), :mod:`~azmm_magic.display.thumbnails`, :mod:`~azmm_magic.display.result`,
:mod:`~azmm_magic.display.stream` (``StreamView``) and :mod:`~azmm_magic.display.preview` (``RequestPreview``).
"""

from __future__ import annotations

from azmm_magic.display.bundle import Bundle, join_lines, markdown_to_html, message_bundle, table_bundle
from azmm_magic.display.preview import RequestPreview
from azmm_magic.display.result import footer_text, result_bundle, result_html, result_markdown, result_plain
from azmm_magic.display.stream import StreamView
from azmm_magic.display.thumbnails import THUMB_SIDE, image_caption, thumbnails_html, thumbnails_markdown

__all__ = ["THUMB_SIDE", "Bundle", "RequestPreview", "StreamView", "footer_text", "image_caption", "join_lines",
           "markdown_to_html", "message_bundle", "result_bundle", "result_html", "result_markdown", "result_plain",
           "table_bundle", "thumbnails_html", "thumbnails_markdown"]
