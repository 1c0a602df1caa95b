"""Inference backends: one interface (`base.Backend`), one table (`registry.BACKENDS`).

A new backend is one module here plus one table entry.
"""
