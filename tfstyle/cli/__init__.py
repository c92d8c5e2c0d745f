"""The commands: ``tfstyle`` (``main``: its flags, one image, and the dispatch to a
folder of photos in ``photos``, a clip in ``video`` or a TF Serving in ``remote``) and
``tfstyle-export`` (``export``). ``common`` holds what the runs share, ``model_flags``
the feature-model flags both commands take, ``photo_paths`` which photos a
``--content`` names.

Nothing is imported here: each command defines its absl flags when its module loads,
and the two commands' flags must not meet in one process.
"""
