"""The project's own error types.

Every failure a user can cause (a bad file, a bad option, missing weights) is raised
as a subclass of :class:`TfstyleError`, with a message that says what was wrong and
what to do. The CLI prints that message on one line and exits non-zero; anything
else escaping is a bug in tfstyle.
"""


class TfstyleError(Exception):
    """Base class of every error tfstyle raises on purpose."""


class ImageError(TfstyleError):
    """An input image could not be read, or an output image could not be written."""


class ConfigError(TfstyleError, ValueError):
    """An option has a value tfstyle cannot use (unknown layer, negative steps, ...)."""


class WeightsError(TfstyleError):
    """The VGG weights could not be obtained or do not fit the chosen backbone."""


class NumericalError(TfstyleError):
    """The optimisation produced a non-finite loss; the last finite image is kept."""


class Interrupted(TfstyleError):
    """The run was asked to stop (Ctrl-C, SIGTERM) between steps.

    Attributes: ``image``, the image so far (uint8 H x W x 3); ``step``, the steps done;
    ``checkpoint``, what ``Stylizer.stylize(resume=...)`` continues from.
    """

    def __init__(self, message, image=None, step=0, checkpoint=None):
        super().__init__(message)
        self.image = image
        self.step = step
        self.checkpoint = checkpoint


def one_line(text) -> str:
    """``text`` with its whitespace collapsed, so that a message quoted from a library
    (Pillow, FFmpeg, the OS) stays on the one line the CLI prints."""
    return " ".join(str(text).split())
