"""The library's driver: the core's stages run eagerly in this process.

``stylizer`` (``Stylizer`` and ``stylize``, the public entry points) builds the feature
model once; ``inputs`` decodes and checks a job's images; ``runner`` runs each stage in
chunks of steps, with progress, stop, resume and NaN handling, over the functions that
``compiled`` traces once per setting; ``memory`` decides when a stage must tile and how
much L-BFGS history fits; ``checkpoint`` keeps an interrupted run; ``photos`` runs many
photos on one model.
"""
