"""TensorFlow Serving: the exported SavedModel and the client that calls it.

The graph side (TensorFlow): ``export`` writes the SavedModel whose signature
``graph_run`` drives through the core's stages, with a request's images decoded and
checked in the graph (``request_images``, ``graph_checks``) and only ops TF Serving runs
(``servable_ops``). The client side (no TensorFlow: a client only sends bytes):
``client.TFServingClient`` over one of two ``transport`` s, gRPC or REST. Both sides
build a request from one table of the served options (``served_options``).

Nothing is imported here, so that ``tfstyle.serving.client`` loads without TensorFlow.
"""
