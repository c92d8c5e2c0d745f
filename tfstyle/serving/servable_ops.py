"""The check that an exported SavedModel would load and run on TF Serving: no custom,
Python-callback or XLA-only ops, no forced compilation, no file I/O outside the saver
(``find_unservable_ops``; ``tfstyle.serving.export`` runs it on every export)."""

from __future__ import annotations

import os
import re

import tensorflow as tf

__all__ = ["find_unservable_ops"]

# Ops that must never run in a serving request: Python callbacks (TF Serving has no
# Python), and file access from the graph. The saver's own save/restore functions,
# which the loader runs once to read variables/, are the one allowed place for the I/O.
_DENIED_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
_IO_OPS = re.compile(
    r"^(ReadFile|WriteFile|MatchingFiles|Save|SaveV2|SaveSlices|Restore|RestoreV2|RestoreSlice|"
    r"MergeV2Checkpoints|PrintV2|Print|ImmutableConst|.*Reader.*|.*RecordDataset.*|"
    r"TextLineDataset.*|.*SummaryWriter.*|Write.*Summary|WriteFile)$")
# Ops only present where XLA is compiled in, and the attributes that force compilation.
_XLA_OPS = re.compile(r"^_?Xla")
_XLA_ATTRS = ("_XlaMustCompile", "_XlaCompile", "_XlaScope")


def find_unservable_ops(export_dir) -> list[str]:
    """Problems that would stop TF Serving from loading or running this SavedModel.

    Walks every node of the MetaGraph and of every function in its library (which
    includes while-loop bodies and cond branches) and reports: ops not registered by
    this TensorFlow (custom ops), Python-callback ops, XLA-only ops or forced XLA
    compilation, and file I/O anywhere but in the saver's restore/save functions
    (reached from ``saver_def``), which TF Serving itself runs to load ``variables/``.

    Returns:
      One readable string per problem; empty if the model is servable.
    """
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    path = os.path.join(os.fspath(export_dir), "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    problems = []
    for meta in saved_model.meta_graphs:
        graph = meta.graph_def
        functions = {f.signature.name: f for f in graph.library.function}
        saver_roots = [meta.saver_def.restore_op_name, meta.saver_def.save_tensor_name,
                       meta.saver_def.filename_tensor_name]
        saver_nodes, saver_functions = _closure(graph, functions, [r for r in saver_roots if r])

        def visit(where, nodes, in_saver):
            for node in nodes:
                op = node.op
                if op not in functions and op_def_registry.get(op) is None:
                    problems.append(f"{where}: op {op} (node {node.name}) is not registered by "
                                    f"TensorFlow {tf.__version__}: a custom op TF Serving lacks")
                if op in _DENIED_OPS:
                    problems.append(f"{where}: op {op} (node {node.name}) calls Python, which "
                                    f"TF Serving does not have")
                if _XLA_OPS.match(op) or any(_true(node.attr.get(a)) for a in _XLA_ATTRS):
                    problems.append(f"{where}: node {node.name} ({op}) needs XLA compilation; "
                                    f"export without jit_compile")
                if _IO_OPS.match(op) and not in_saver(node):
                    problems.append(f"{where}: op {op} (node {node.name}) accesses files "
                                    f"outside the saver's restore graph")

        visit("graph", graph.node, lambda node: node.name in saver_nodes)
        for name, function in functions.items():
            if any(_true(function.attr.get(a)) for a in _XLA_ATTRS):
                problems.append(f"function {name} is marked for XLA compilation (jit_compile)")
            in_saver = name in saver_functions
            visit(f"function {name}", function.node_def, lambda node: in_saver)
    return problems


def _true(attr):
    return attr is not None and attr.WhichOneof("value") == "b" and attr.b


def _function_refs(node):
    for attr in node.attr.values():
        kind = attr.WhichOneof("value")
        if kind == "func":
            yield attr.func.name
        elif kind == "list":
            for func in attr.list.func:
                yield func.name


def _closure(graph, functions, roots):
    """Node names of ``graph`` reachable backwards from ``roots`` (tensor or op names),
    and the names of the functions they call, transitively."""
    by_name = {node.name: node for node in graph.node}
    seen, stack = set(), [r.lstrip("^").split(":")[0] for r in roots]
    called = set()
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        node = by_name[name]
        stack.extend(i.lstrip("^").split(":")[0] for i in node.input)
        called.update(_function_refs(node))
        if node.op in functions:
            called.add(node.op)
    pending = list(called)
    while pending:
        function = functions.get(pending.pop())
        if function is None:
            continue
        for node in function.node_def:
            refs = set(_function_refs(node)) | ({node.op} if node.op in functions else set())
            for ref in refs - called:
                called.add(ref)
                pending.append(ref)
    return seen, called
