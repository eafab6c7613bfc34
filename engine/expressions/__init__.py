"""The policy expression language: a whitelist grammar, type-checked and compiled.

Nothing from a policy is ever handed to ``eval``: text is parsed by our own
grammar (:mod:`.syntax`), checked against declared fact types (:mod:`.checker`)
and turned into Python source by :mod:`.codegen` from the checked tree only,
so the generated code can contain nothing the grammar does not allow.
"""
