"""Video: a clip's frames stylized without flicker (Ruder, Dosovitskiy & Brox, GCPR 2016).

``frames`` runs a clip's frames one after another, each warm-started from the last and
held to it, here (``stylize_frames``) or on a TF Serving (``served_frames``), with the
optical flow of ``flow``; ``reader`` reads a clip's frames and ``writer`` writes an mp4,
both through PyAV (``media``: what the two share). None of them imports TensorFlow:
the video run reaches it through the ``Stylizer`` or the client it is given.
"""

from tfstyle.video.frames import VideoOptions, served_frames, stylize_frames

__all__ = ["VideoOptions", "stylize_frames", "served_frames"]
