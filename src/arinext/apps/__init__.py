"""Applications built on the library: the end-to-end demo, the dataset builders and the benchmark runner.

Nothing below :mod:`arinext.apps` imports from here; these modules use the library's public layers.
"""
