"""The algorithm, as tensor functions: what both drivers (the library's eager runner and
the exported SavedModel's graph) trace."""
