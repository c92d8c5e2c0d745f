"""The in-graph checks of the exported model: assert ops that fail a request with
INVALID_ARGUMENT and a message in words (what was refused, what to send instead), before
the work they guard. Every limit of ``export``, ``graph_run`` and ``request_images`` is
one of these.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["check", "check_str", "printable"]


def check(condition, template, *values):
    """An assert op failing with INVALID_ARGUMENT: "assertion failed: [<message>]".

    ``template`` is a ``tf.strings.format`` template; ``values`` fill its ``{}``. The
    Assert op C-escapes the message, so templates avoid quote characters.
    """
    message = tf.strings.format(template, values) if values else tf.constant(template)
    return tf.debugging.Assert(condition, [message], summarize=1)


def check_str(condition, *parts):
    """Like ``check``, for a message that contains string tensors (joined, not
    formatted, so that no quotes are added around them)."""
    return tf.debugging.Assert(condition, [tf.strings.join(list(parts))], summarize=1)


def printable(text):
    """At most 40 characters of a request's string, as valid UTF-8 (invalid bytes
    replaced), so that echoing it in an error message cannot break the message."""
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    return tf.strings.substr(text, 0, 40, unit="UTF8_CHAR")
