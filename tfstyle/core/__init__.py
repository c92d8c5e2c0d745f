"""The algorithm, as tensor functions: features → loss → one step → one stage → a run.

What both drivers trace: the library's eager runner and the exported SavedModel's
graph run these functions and nothing else of the algorithm. Nothing here reads a file,
keeps a ``tf.Variable`` but the network's weights, or knows which driver calls it.

Gatys et al. optimise an image x so that its VGG features match a photo's content and a
painting's style. Read top to bottom (``model``, then ``stages``):

* ``StyleModel.features(x)``: the content and style layers' activations;
* ``StyleModel.compute_targets``: the photo's content features and the paintings'
  style statistics (``content_targets`` and ``style_targets``);
* ``StyleModel.make_step``: ``step(x, state, targets) -> (x, state, terms)``: one loss
  and gradient (``tfstyle.core.losses``, tile by tile with ``tfstyle.core.tiling``) and one
  optimiser update (``tfstyle.core.optimizers``);
* ``stages.optimize``: a stage's steps in a ``tf.while_loop``;
* ``stages.stage_functions``: those three for one loss, optimiser and tiling
  (``StageFunctions``);
* ``stages.prepare_stage``: one coarse-to-fine stage, from its inputs and where the last
  one ended: its targets, its start (``start_image`` at the first stage, else
  ``next_stage``: the last result upsampled, the optimiser's state carried over) and
  the functions that run its steps;
* ``StyleModel.evaluate``: the loss of an image as it stands (a stage run for 0 steps).

A run is then (as ``tfstyle.serving.graph_run`` writes it; ``tfstyle.local.runner`` the same, in
chunks of steps)::

    previous = None
    for k, (size, steps) in enumerate(stage_plan(...)):   # schedule
        inputs = stage_tensors(content, styles, size, ...)  # stage_inputs
        stage = prepare_stage(model, functions, options, optimizer, inputs, previous,
                              last=(k == last))
        x, state, terms = stage.functions.optimize(stage.start, stage.state,
                                                   stage.targets, steps)
        previous = Previous(x, state, inputs.run_content[None])
    result = optimizer.result(x, state)

Two drivers run that loop over these same functions: the library's eager runner
(``tfstyle.local.runner``: chunks of steps with progress, stop and resume; its functions
traced once per setting by ``tfstyle.local.compiled``) and the exported SavedModel's graph
(``tfstyle.serving.graph_run``: one ``tf.while_loop`` over the stages, every function traced
inline). As nothing here holds state between calls, the same functions serve
concurrent requests.

The other modules: ``features`` (the VGG), ``losses``, ``optimizers`` (pure updates),
``tiling`` (the loss tile by tile), ``schedule`` (the coarse-to-fine plan),
``stage_inputs`` (a stage's images at its size), ``color`` (colour control),
``texture`` (the default start's random phase), ``precision`` (bfloat16 or float32).
"""
